//! Stateless session tickets (RFC 8446 §4.6.1, RFC 5077): the session state is
//! sealed with ChaCha20-Poly1305 under a key made when the snapshot is built,
//! with a fresh random nonce per ticket. The key is read-only and shared by
//! every worker through an `Arc`: rustls's own `Ticketer` rotates keys behind
//! a `RwLock`, which every handshake on every worker would take. The key lives
//! as long as the configuration; a reload makes a new one.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

/// Lifetime hint sent with each ticket (RFC 8446 §4.6.1 caps it at 7 days);
/// rustls's own ticketer uses the same 6 hours.
const LIFETIME_SECS: u32 = 6 * 60 * 60;

pub struct TicketKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    /// A fresh random key; fails only if the OS has no randomness to give.
    pub fn new() -> Result<TicketKey, ring::error::Unspecified> {
        let rng = SystemRandom::new();
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes)?;
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &bytes)?);
        Ok(TicketKey { key, rng })
    }
}

impl ProducesTickets for TicketKey {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECS
    }

    /// `nonce || ciphertext || tag`.
    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let tag_len = CHACHA20_POLY1305.tag_len();
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + tag_len);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut out[NONCE_LEN..],
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, sealed) = cipher.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain_len = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut buf)
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = TicketKey::new().unwrap();
        let a = key.encrypt(b"session state").unwrap();
        let b = key.encrypt(b"session state").unwrap();
        assert_ne!(a, b, "a fresh nonce per ticket");
        assert_eq!(key.decrypt(&a).unwrap(), b"session state");
        let mut bad = a.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(key.decrypt(&bad), None);
        assert_eq!(key.decrypt(&a[..20]), None);
        assert_eq!(key.decrypt(b""), None);
        let other = TicketKey::new().unwrap();
        assert_eq!(other.decrypt(&a), None, "another key cannot open it");
        assert_eq!(key.decrypt(&key.encrypt(b"").unwrap()).unwrap(), b"");
    }
}
