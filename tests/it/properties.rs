//! Property tests of the symbolic machine: it reads what a real pickler writes exactly, it never
//! panics on arbitrary opcodes, and a broken stream is never clean.

use num_bigint::BigInt;
use picklescan_rs::finding::verdict_of;
use picklescan_rs::internals::pickle::value::{Id, Value as V};
use picklescan_rs::internals::pickle::vm::{NoHooks, Vm};
use picklescan_rs::{Scanner, Verdict};
use proptest::prelude::*;
use serde_pickle::{HashableValue as H, Value as P};
use std::collections::BTreeMap;

fn hashable_key() -> impl Strategy<Value = H> {
    prop_oneof![
        any::<i64>().prop_map(H::I64),
        "[a-z]{0,8}".prop_map(H::String)
    ]
}

fn pickle_value() -> impl Strategy<Value = P> {
    let leaf = prop_oneof![
        Just(P::None),
        any::<bool>().prop_map(P::Bool),
        any::<i64>().prop_map(P::I64),
        any::<i128>().prop_map(|i| P::Int(BigInt::from(i) * BigInt::from(1u64 << 63))),
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(P::F64),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(P::Bytes),
        "\\PC{0,20}".prop_map(P::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(P::List),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(P::Tuple),
            proptest::collection::btree_map(hashable_key(), inner, 0..6).prop_map(P::Dict),
        ]
    })
}

/// Our symbolic value as a serde-pickle value, for comparison.
fn to_pickle(vm: &Vm<'_>, id: Id) -> P {
    match vm.value(id) {
        V::None => P::None,
        V::Bool(b) => P::Bool(*b),
        V::Int(i) => P::I64(*i),
        V::BigInt(b) => {
            let n = BigInt::from_signed_bytes_le(b);
            match i64::try_from(&n) {
                Ok(i) => P::I64(i),
                Err(_) => P::Int(n),
            }
        }
        V::Float(f) => P::F64(*f),
        V::Str(s) => P::String(s.to_string()),
        V::Bytes(b) | V::ByteArray(b) => P::Bytes(b.to_vec()),
        V::List(items) => P::List(items.iter().map(|&i| to_pickle(vm, i)).collect()),
        V::Tuple(items) => P::Tuple(items.iter().map(|&i| to_pickle(vm, i)).collect()),
        V::Dict(pairs) => {
            let mut m = BTreeMap::new();
            for &(k, v) in pairs {
                m.insert(to_pickle(vm, k).into_hashable().unwrap(), to_pickle(vm, v));
            }
            P::Dict(m)
        }
        other => panic!("unexpected value {other:?}"),
    }
}

/// serde-pickle keeps small big ints as `Int`; compare in one normal form.
fn normal(v: P) -> P {
    match v {
        P::Int(n) => match i64::try_from(&n) {
            Ok(i) => P::I64(i),
            Err(_) => P::Int(n),
        },
        P::List(items) => P::List(items.into_iter().map(normal).collect()),
        P::Tuple(items) => P::Tuple(items.into_iter().map(normal).collect()),
        P::Dict(m) => P::Dict(m.into_iter().map(|(k, v)| (k, normal(v))).collect()),
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn values_written_by_serde_pickle_decode_to_the_same_value(v in pickle_value()) {
        let bytes = serde_pickle::value_to_vec(&v, serde_pickle::SerOptions::new()).unwrap();
        let scanner = Scanner::default();
        let (vm, run) = scanner.run_one(&bytes, &mut NoHooks);
        prop_assert!(run.error.is_none(), "{:?}", run.error);
        prop_assert_eq!(run.end, bytes.len());
        prop_assert_eq!(normal(to_pickle(&vm, run.result.unwrap())), normal(v));
        let findings = scanner.scan_pickles(&bytes, &mut NoHooks).findings;
        prop_assert!(findings.is_empty(), "{:?}", findings);
    }

    #[test]
    fn every_strict_prefix_of_a_pickle_is_not_clean(v in pickle_value(), cut in any::<prop::sample::Index>()) {
        let bytes = serde_pickle::value_to_vec(&v, serde_pickle::SerOptions::new()).unwrap();
        let cut = cut.index(bytes.len());
        let findings = Scanner::default().scan_pickles(&bytes[..cut], &mut NoHooks).findings;
        prop_assert!(verdict_of(&findings) >= Verdict::Suspicious, "prefix of {} bytes was clean", cut);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_errors_are_never_clean(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let scanner = Scanner::default();
        let (_, run) = scanner.run_one(&data, &mut NoHooks);
        let findings = scanner.scan_pickles(&data, &mut NoHooks).findings;
        if run.error.is_some() {
            prop_assert!(verdict_of(&findings) >= Verdict::Suspicious);
        }
    }

    #[test]
    fn opcode_soup_never_panics(ops in proptest::collection::vec((0usize..68, proptest::collection::vec(any::<u8>(), 0..12)), 0..200)) {
        // Opcodes drawn from the table, each followed by a few random argument bytes.
        let table = picklescan_rs::internals::pickle::opcode::Opcode::ALL;
        let mut data = Vec::new();
        for (i, arg) in ops {
            data.push(table[i] as u8);
            data.extend(arg);
        }
        let findings = Scanner::default().scan_pickles(&data, &mut NoHooks).findings;
        let _ = verdict_of(&findings);
    }
}

#[test]
fn mutations_of_corpus_pickles_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/benign");
    let scanner = Scanner::default();
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("pkl") {
            continue;
        }
        files += 1;
        let original = std::fs::read(&path).unwrap();
        for _ in 0..200 {
            let mut data = original.clone();
            let n = (next() % 4 + 1) as usize;
            for _ in 0..n {
                let at = (next() as usize) % data.len().max(1);
                match next() % 3 {
                    0 if !data.is_empty() => data[at] = next() as u8,
                    1 => data.insert(at.min(data.len()), next() as u8),
                    _ if !data.is_empty() => {
                        data.remove(at);
                    }
                    _ => {}
                }
            }
            let _ = scanner.scan_pickles(&data, &mut NoHooks);
        }
    }
    assert!(files > 5, "only {files} benign pickles found");
}
