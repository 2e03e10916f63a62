//! A server's routes and nginx's `location` precedence over them.
//!
//! Exact and prefix matches live in one byte trie: a single walk down the
//! request path finds the exact route (if the walk consumes the whole path) and
//! the longest prefix on the way, in O(path length) whatever the route count.
//! Regexes are tried in file order with `regex::bytes`, so lookup never allocates
//! and never needs the path to be UTF-8.

use bytes::Bytes;
use regex::bytes::Regex;

use crate::snapshot::Route;

/// How a route matches the request path (DESIGN §2.1).
#[derive(Debug, Clone)]
pub enum Matcher {
    /// `path = "/x"`, nginx `location = /x`.
    Exact(Bytes),
    /// `prefix = "/x"`; `stop_regex` is nginx `location ^~ /x`.
    Prefix { prefix: Bytes, stop_regex: bool },
    /// `regex = '...'`, nginx `location ~` (or `~*`, compiled case-insensitive).
    Regex(Regex),
}

#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    matchers: Vec<Matcher>,
    trie: PathTrie,
    /// Indexes of regex routes, in file order.
    regexes: Vec<usize>,
}

/// The route chosen for a path.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    pub route: &'a Route,
    pub index: usize,
    /// Bytes of the path the route matched: the prefix length for prefix
    /// routes, the whole path for exact ones, 0 for regex routes.
    pub matched_len: usize,
}

/// Returned when a route repeats an earlier exact path or prefix of the same
/// server; holds the index of the earlier route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate(pub usize);

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable {
            routes: Vec::new(),
            matchers: Vec::new(),
            trie: PathTrie::new(),
            regexes: Vec::new(),
        }
    }
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// Appends a route; file order matters for regexes.
    pub fn push(&mut self, matcher: Matcher, route: Route) -> Result<usize, Duplicate> {
        let index = self.routes.len();
        match &matcher {
            Matcher::Exact(path) => self.trie.insert(path, Slot::Exact, index)?,
            Matcher::Prefix { prefix, .. } => self.trie.insert(prefix, Slot::Prefix, index)?,
            Matcher::Regex(_) => self.regexes.push(index),
        }
        self.routes.push(route);
        self.matchers.push(matcher);
        Ok(index)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// For fields that do not take part in matching (metric slots).
    pub fn routes_mut(&mut self) -> &mut [Route] {
        &mut self.routes
    }

    pub fn matcher(&self, index: usize) -> &Matcher {
        &self.matchers[index]
    }

    /// nginx location precedence on the (already normalised) path: exact `path`
    /// match; else the longest `prefix`, which wins at once if it has
    /// `stop_regex` (nginx `^~`); else the first `regex` in file order that
    /// matches; else the longest prefix; else `None` (404).
    pub fn find(&self, path: &[u8]) -> Option<Found<'_>> {
        let walk = self.trie.walk(path);
        if let Some(index) = walk.exact {
            return Some(self.found(index, path.len()));
        }
        if let Some((index, len)) = walk.longest_prefix
            && matches!(
                self.matchers[index],
                Matcher::Prefix {
                    stop_regex: true,
                    ..
                }
            )
        {
            return Some(self.found(index, len));
        }
        for &index in &self.regexes {
            if let Matcher::Regex(re) = &self.matchers[index]
                && re.is_match(path)
            {
                return Some(self.found(index, 0));
            }
        }
        walk.longest_prefix
            .map(|(index, len)| self.found(index, len))
    }

    fn found(&self, index: usize, matched_len: usize) -> Found<'_> {
        Found {
            route: &self.routes[index],
            index,
            matched_len,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Exact,
    Prefix,
}

/// Byte trie over exact paths and prefixes. Nodes live in one `Vec`; edges are
/// kept sorted so a step is a binary search.
#[derive(Debug)]
struct PathTrie {
    nodes: Vec<Node>,
}

#[derive(Debug, Default)]
struct Node {
    edges: Vec<(u8, usize)>,
    exact: Option<usize>,
    prefix: Option<usize>,
}

struct Walk {
    exact: Option<usize>,
    longest_prefix: Option<(usize, usize)>,
}

impl PathTrie {
    fn new() -> PathTrie {
        PathTrie {
            nodes: vec![Node::default()],
        }
    }

    fn insert(&mut self, key: &[u8], slot: Slot, index: usize) -> Result<(), Duplicate> {
        let mut node = 0usize;
        for &byte in key {
            node = match self.nodes[node].edges.binary_search_by_key(&byte, |e| e.0) {
                Ok(at) => self.nodes[node].edges[at].1,
                Err(at) => {
                    let child = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[node].edges.insert(at, (byte, child));
                    child
                }
            };
        }
        let target = match slot {
            Slot::Exact => &mut self.nodes[node].exact,
            Slot::Prefix => &mut self.nodes[node].prefix,
        };
        if let Some(earlier) = *target {
            return Err(Duplicate(earlier));
        }
        *target = Some(index);
        Ok(())
    }

    fn walk(&self, path: &[u8]) -> Walk {
        let mut node = &self.nodes[0];
        let mut longest_prefix = node.prefix.map(|i| (i, 0));
        for (depth, &byte) in path.iter().enumerate() {
            match node.edges.binary_search_by_key(&byte, |e| e.0) {
                Ok(at) => node = &self.nodes[node.edges[at].1],
                Err(_) => {
                    return Walk {
                        exact: None,
                        longest_prefix,
                    };
                }
            }
            if let Some(i) = node.prefix {
                longest_prefix = Some((i, depth + 1));
            }
        }
        Walk {
            exact: node.exact,
            longest_prefix,
        }
    }
}

/// Counts heap allocations per thread, so tests can prove that lookups on the
/// data path do not allocate.
#[cfg(test)]
pub(crate) mod alloc_counter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: every method forwards to `System` with the caller's arguments
    // unchanged; the bookkeeping is a const-initialised thread-local `Cell`,
    // which itself never allocates, so there is no re-entrancy.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            // SAFETY: as for `dealloc`, and the caller upholds `realloc`'s size rules.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn count() {
        // `try_with`: allocations during thread-local teardown are not counted.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    /// Allocations made by `f` on this thread.
    pub(crate) fn allocations_in(f: impl FnOnce()) -> usize {
        let before = ALLOCATIONS.with(Cell::get);
        f();
        ALLOCATIONS.with(Cell::get) - before
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::snapshot::{Access, Action, HeaderEdits};

    fn route(label: &str) -> Route {
        Route {
            label: label.into(),
            action: Action::Respond {
                status: 200,
                body: Bytes::new(),
            },
            access: Access::default(),
            max_body_size: None,
            request_headers: HeaderEdits::default(),
            response_headers: HeaderEdits::default(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            metric: 0,
            idle_timeout: Duration::from_secs(3600),
            websocket: true,
        }
    }

    fn exact(p: &'static str) -> Matcher {
        Matcher::Exact(Bytes::from_static(p.as_bytes()))
    }

    fn prefix(p: &'static str) -> Matcher {
        Matcher::Prefix {
            prefix: Bytes::from_static(p.as_bytes()),
            stop_regex: false,
        }
    }

    fn stop(p: &'static str) -> Matcher {
        Matcher::Prefix {
            prefix: Bytes::from_static(p.as_bytes()),
            stop_regex: true,
        }
    }

    fn regex(re: &str, case_insensitive: bool) -> Matcher {
        Matcher::Regex(
            regex::bytes::RegexBuilder::new(re)
                .case_insensitive(case_insensitive)
                .build()
                .unwrap(),
        )
    }

    fn table(entries: Vec<(&str, Matcher)>) -> RouteTable {
        let mut t = RouteTable::new();
        for (label, m) in entries {
            t.push(m, route(label)).unwrap();
        }
        t
    }

    fn label(t: &RouteTable, path: &str) -> Option<String> {
        t.find(path.as_bytes()).map(|f| f.route.label.to_string())
    }

    /// The example from nginx's `location` documentation.
    #[test]
    fn nginx_documentation_table() {
        let t = table(vec![
            ("A", exact("/")),
            ("B", prefix("/")),
            ("C", prefix("/documents/")),
            ("D", stop("/images/")),
            ("E", regex(r"\.(gif|jpg|jpeg)$", true)),
        ]);
        assert_eq!(label(&t, "/").as_deref(), Some("A"));
        assert_eq!(label(&t, "/index.html").as_deref(), Some("B"));
        assert_eq!(label(&t, "/documents/document.html").as_deref(), Some("C"));
        assert_eq!(label(&t, "/images/1.gif").as_deref(), Some("D"));
        assert_eq!(label(&t, "/documents/1.jpg").as_deref(), Some("E"));
        assert_eq!(label(&t, "/documents/1.JPG").as_deref(), Some("E"));
    }

    #[test]
    fn matched_len_per_kind() {
        let t = table(vec![
            ("exact", exact("/x")),
            ("prefix", prefix("/jhub/")),
            ("regex", regex("^/re", false)),
        ]);
        let f = t.find(b"/x").unwrap();
        assert_eq!((f.index, f.matched_len), (0, 2));
        let f = t.find(b"/jhub/api").unwrap();
        assert_eq!((f.index, f.matched_len), (1, 6));
        let f = t.find(b"/rest").unwrap();
        assert_eq!((f.index, f.matched_len), (2, 0));
    }

    #[test]
    fn longest_prefix_wins_regardless_of_order() {
        let t = table(vec![
            ("short", prefix("/a")),
            ("longest", prefix("/a/b/c")),
            ("middle", prefix("/a/b")),
        ]);
        assert_eq!(label(&t, "/a/b/c/d").as_deref(), Some("longest"));
        assert_eq!(label(&t, "/a/b/x").as_deref(), Some("middle"));
        assert_eq!(label(&t, "/a/bc").as_deref(), Some("middle"));
        assert_eq!(label(&t, "/ab").as_deref(), Some("short"));
        assert_eq!(label(&t, "/b"), None);
        assert_eq!(label(&t, ""), None);
    }

    #[test]
    fn first_regex_in_file_order_wins_over_prefix() {
        let t = table(vec![
            ("root", prefix("/")),
            ("first", regex("^/api/", false)),
            ("second", regex("^/api/v2/", false)),
        ]);
        assert_eq!(label(&t, "/api/v2/x").as_deref(), Some("first"));
        assert_eq!(label(&t, "/API/v2/x").as_deref(), Some("root"));
        assert_eq!(label(&t, "/other").as_deref(), Some("root"));
    }

    #[test]
    fn exact_does_not_match_longer_or_shorter_paths() {
        let t = table(vec![("exact", exact("/login"))]);
        assert_eq!(label(&t, "/login").as_deref(), Some("exact"));
        assert_eq!(label(&t, "/login/"), None);
        assert_eq!(label(&t, "/log"), None);
    }

    #[test]
    fn stop_regex_only_applies_when_it_is_the_longest_prefix() {
        let t = table(vec![
            ("stop", stop("/static/")),
            ("longer", prefix("/static/img/")),
            ("re", regex(r"\.png$", false)),
        ]);
        assert_eq!(label(&t, "/static/a.png").as_deref(), Some("stop"));
        assert_eq!(label(&t, "/static/img/a.png").as_deref(), Some("re"));
        assert_eq!(label(&t, "/static/img/a.txt").as_deref(), Some("longer"));
    }

    #[test]
    fn non_utf8_paths_are_looked_up() {
        let t = table(vec![("p", prefix("/f")), ("re", regex("^/x", false))]);
        assert_eq!(t.find(b"/f\xff\xfe").map(|f| f.index), Some(0));
        assert_eq!(t.find(b"/x\xff").map(|f| f.index), Some(1));
    }

    #[test]
    fn duplicates_are_reported_with_the_earlier_index() {
        let mut t = RouteTable::new();
        t.push(prefix("/a"), route("1")).unwrap();
        t.push(exact("/a"), route("2")).unwrap();
        assert_eq!(t.push(prefix("/a"), route("3")).unwrap_err(), Duplicate(0));
        assert_eq!(t.push(exact("/a"), route("4")).unwrap_err(), Duplicate(1));
        assert_eq!(t.push(stop("/a"), route("5")).unwrap_err(), Duplicate(0));
        assert_eq!(t.routes().len(), 2);
    }

    #[test]
    fn lookup_does_not_allocate() {
        let t = table(vec![
            ("A", exact("/")),
            ("B", prefix("/")),
            ("C", prefix("/documents/")),
            ("D", stop("/images/")),
            ("E", regex(r"\.(gif|jpg|jpeg)$", true)),
        ]);
        let paths: [&[u8]; 5] = [
            b"/",
            b"/index.html",
            b"/documents/1.jpg",
            b"/images/1.gif",
            b"/x",
        ];
        // The first regex search on a thread builds its matching cache.
        for path in paths {
            t.find(path);
        }
        let mut hits = 0;
        let allocations = alloc_counter::allocations_in(|| {
            for _ in 0..100 {
                for path in paths {
                    hits += usize::from(t.find(path).is_some());
                }
            }
        });
        assert_eq!(hits, 500);
        assert_eq!(allocations, 0);
    }

    #[test]
    fn allocation_counter_counts() {
        let allocations = alloc_counter::allocations_in(|| {
            std::hint::black_box(vec![1u8; 64]);
        });
        assert!(allocations >= 1);
    }

    #[test]
    fn a_thousand_prefixes() {
        let mut t = RouteTable::new();
        for i in 0..1000 {
            let p = Bytes::from(format!("/app{i}/"));
            let m = Matcher::Prefix {
                prefix: p,
                stop_regex: false,
            };
            t.push(m, route(&format!("app{i}"))).unwrap();
        }
        t.push(prefix("/"), route("root")).unwrap();
        for i in (0..1000).step_by(37) {
            let path = format!("/app{i}/some/page");
            assert_eq!(label(&t, &path), Some(format!("app{i}")));
        }
        assert_eq!(label(&t, "/app1000/").as_deref(), Some("root"));
        assert_eq!(label(&t, "/app1/").as_deref(), Some("app1"));
    }
}
