//! Route lookup with 10 and 1,000 routes (prefixes plus regexes), on paths that
//! hit a prefix, a regex, and the catch-all.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ringway_bench::config_with_routes;

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for n in [10usize, 1000] {
        let snapshot = ringway::config::load_str(&config_with_routes(n), "bench").unwrap();
        let routes = &snapshot.servers[0].routes;
        let last = n - 1;
        let regex_path = format!("/api/v{}/items/42", (n / 10 - 1) * 10);
        let paths = [
            ("prefix", format!("/section{last}/page")),
            ("regex", regex_path),
            ("fallback", "/nothing/here".to_string()),
        ];
        for (kind, path) in paths {
            assert!(routes.find(path.as_bytes()).is_some());
            group.bench_function(format!("{n}_routes/{kind}"), |b| {
                b.iter(|| black_box(routes.find(black_box(path.as_bytes())).map(|f| f.index)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
