//! Benchmarks for `paddock::seal`: seal, open, and re-wrapping 1,000 values
//! from an old key to a new one.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use paddock::seal::{Binding, Field, KeyId, Keyring, Sealed, Sealer};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

const SECRET: &str = "abcdEFGHijklMNOPqrstUVWXyz0123456789ABCD";

fn keyring(ids: &[&str]) -> Keyring {
    let spec = ids
        .iter()
        .map(|id| {
            let id = KeyId::parse(id).expect("valid id");
            Keyring::generate_entry(&id).expose_secret().to_owned()
        })
        .collect::<Vec<_>>()
        .join(",");
    Keyring::parse(&SecretString::from(spec)).expect("valid keyring")
}

fn binding() -> Binding {
    Binding {
        organization_id: Uuid::new_v4(),
        member_id: Uuid::new_v4(),
        credential_id: Uuid::new_v4(),
        field: Field::Secret,
    }
}

fn bench(c: &mut Criterion) {
    assert_eq!(SECRET.len(), 40);
    let plain = SecretString::from(SECRET.to_owned());
    let ring = keyring(&["bench"]);
    let at = binding();
    let sealed = ring.seal(&plain, &at).expect("seal");

    c.bench_function("seal one 40-char secret", |b| {
        b.iter(|| ring.seal(black_box(&plain), black_box(&at)).expect("seal"));
    });
    c.bench_function("open one 40-char secret", |b| {
        b.iter(|| ring.open(black_box(&sealed), black_box(&at)).expect("open"));
    });

    // 1,000 values sealed under the old key, each at its own place.
    let old_spec = Keyring::generate_entry(&KeyId::parse("old").expect("id"));
    let new_entry = Keyring::generate_entry(&KeyId::parse("new").expect("id"));
    let old = Keyring::parse(&old_spec).expect("old keyring");
    let rotated = Keyring::parse(&SecretString::from(format!(
        "{},{}",
        new_entry.expose_secret(),
        old_spec.expose_secret()
    )))
    .expect("rotated keyring");
    let values: Vec<(Binding, Sealed)> = (0..1_000)
        .map(|_| {
            let at = binding();
            let s = old.seal(&plain, &at).expect("seal");
            (at, s)
        })
        .collect();

    let mut group = c.benchmark_group("rotation");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("rewrap 1,000 values", |b| {
        b.iter(|| {
            for (at, sealed) in &values {
                black_box(rotated.rewrap(black_box(sealed), at).expect("rewrap"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
