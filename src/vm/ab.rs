//! Deterministic A/B assignment: the normative formula of DESIGN.md §3.
//!
//! ```text
//! bucket = murmur3_x86_32(utf8(SALT + ":" + UNIT), seed = 0) mod 10000
//! ```
//!
//! SALT is the experiment's name (or its `salt "…"` override) when choosing a group, and the
//! layer's name when deciding whether a unit enters a layered experiment. UNIT is the unit's text;
//! int units are written in decimal ([`int_unit`]). Groups take consecutive bucket ranges in
//! declaration order ([`group_for`]); a layered experiment owns the layer buckets `[A×100, B×100)`
//! ([`in_range`]).
//!
//! This module owns only that arithmetic. It knows nothing of the VM, programs, traces or
//! providers, and it does no I/O. Nothing here allocates.
//!
//! Every result is a compatibility promise: the same unit lands in the same group on every
//! machine, process and release, and analysts recompute assignments outside ruledeck. The tests
//! pin the hash to published MurmurHash3 vectors and to vectors produced by an independent oracle
//! (`tests/ab_vectors.py`, Python `mmh3` plus a pure-Python reference). If one of them fails,
//! users would be re-bucketed: fix the code, never the vectors.

use std::hash::Hasher;

/// Number of buckets a unit hashes into; a percentage `p%` (two decimals at most) covers
/// `p × 100` buckets, so `12.34%` is 1234 buckets.
pub const BUCKETS: u32 = 10_000;

/// murmur3 x86 32 of salt ":" unit, seed 0, without allocating.
///
/// The three parts are fed to an incremental hasher instead of being concatenated; it buffers
/// a 4-byte block that straddles two parts, so the result is that of the contiguous bytes (the
/// tests check every split position).
pub fn hash(salt: &str, unit: &str) -> u32 {
    let mut hasher = mur3::Hasher32::with_seed(0);
    hasher.write(salt.as_bytes());
    hasher.write(b":");
    hasher.write(unit.as_bytes());
    hasher.finish32()
}

/// hash(salt, unit) % BUCKETS
pub fn bucket(salt: &str, unit: &str) -> u32 {
    hash(salt, unit) % BUCKETS
}

/// Writes an int unit in decimal into `buf` (cleared first) and returns it as &str — for int
/// units, no allocation when buf has capacity.
///
/// The text is what `value.to_string()` gives: an optional `-`, then digits without leading zeros
/// or a `+` sign. Twenty bytes of capacity hold every `i64`.
pub fn int_unit(value: i64, buf: &mut String) -> &str {
    buf.clear();
    if value < 0 {
        buf.push('-');
    }
    let mut magnitude = value.unsigned_abs();
    let mut digits = [0u8; 20]; // u64::MAX has 20 decimal digits
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        buf.push(char::from(d));
    }
    buf.as_str()
}

/// Group index for a bucket given the groups' bucket counts in declaration order (consecutive
/// ranges starting at 0); None when the bucket is beyond the sum (not in the experiment).
///
/// Group `i` covers `[sum of earlier counts, that sum + group_buckets[i])`, so a group of 0
/// buckets never matches.
pub fn group_for(bucket: u32, group_buckets: &[u32]) -> Option<usize> {
    let mut end: u64 = 0;
    for (i, &n) in group_buckets.iter().enumerate() {
        end += u64::from(n);
        if u64::from(bucket) < end {
            return Some(i);
        }
    }
    None
}

/// Whether a layer bucket falls in a claimed range [start, end).
pub fn in_range(bucket: u32, start: u32, end: u32) -> bool {
    start <= bucket && bucket < end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contiguous(bytes: &[u8]) -> u32 {
        mur3::murmurhash3_x86_32(bytes, 0)
    }

    /// The hash of `parts` fed one after the other to the incremental hasher.
    fn incremental<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
        let mut hasher = mur3::Hasher32::with_seed(0);
        for part in parts {
            hasher.write(part);
        }
        hasher.finish32()
    }

    // ---- published MurmurHash3_x86_32 vectors (seed 0) -------------------------------------

    #[test]
    fn published_murmur3_vectors() {
        assert_eq!(contiguous(b""), 0);
        assert_eq!(contiguous(b"hello"), 0x248b_fa47);
        assert_eq!(contiguous(b"The quick brown fox jumps over the lazy dog"), 0x2e4f_f723);
    }

    /// SMHasher's VerificationTest for MurmurHash3_x86_32 (published value 0xB0F57EE3): hash
    /// the keys {}, {0}, {0,1}, … {0..254} with seed 256 - len, then hash the 256 results.
    #[test]
    fn smhasher_verification_value() {
        let key: Vec<u8> = (0..=255u8).collect();
        let mut hashes = Vec::with_capacity(256 * 4);
        for len in 0..256usize {
            let h = mur3::murmurhash3_x86_32(&key[..len], 256 - len as u32);
            hashes.extend_from_slice(&h.to_le_bytes());
        }
        assert_eq!(contiguous(&hashes), 0xb0f5_7ee3);
    }

    // ---- vectors from the independent oracle (tests/ab_vectors.py) -------------------------

    // Generated by tests/ab_vectors.py (mmh3 + pure-Python reference). Do not edit by hand.
    /// (salt, unit, murmur3_x86_32(salt ":" unit, seed 0), bucket)
    const RULEDECK_VECTORS: &[(&str, &str, u32, u32)] = &[
        ("inst_2611", "u-1001", 0x459fe92a, 7818),              // DESIGN example
        ("inst_2611", "u-1002", 0x5785d067, 7431),              // DESIGN example
        ("inst_2611", "u-1003", 0xdf257ab1, 5409),              // DESIGN example
        ("inst_2611", "u-1004", 0x41790803, 947),               // DESIGN example
        ("inst_2611", "u-1005", 0x63a3c529, 7225),              // DESIGN example
        ("inst_2611", "u-1006", 0xdda57684, 8516),              // DESIGN example
        ("inst_2611", "u-1007", 0xb77bd5b0, 6160),              // DESIGN example
        ("inst_2611", "u-1008", 0x11e321cb, 7995),              // DESIGN example
        ("inst_2611", "u-1009", 0xf7c0be27, 3943),              // DESIGN example
        ("inst_2611", "u-1010", 0x0fbb0839, 5577),              // DESIGN example
        ("inst_2611", "", 0x06c00fb9, 233),                     // empty unit
        ("inst_2611", "12345", 0xc9bd61d2, 1762),               // int unit 12345
        ("inst_2611", "0", 0x7e7afba3, 9027),                   // int unit 0
        ("inst_2611", "-5", 0xb05299dc, 3356),                  // int unit -5
        ("inst_2611", "9223372036854775807", 0x9cdc087d, 5789), // int unit i64::MAX
        ("inst_2611", "-9223372036854775808", 0x84469d4c, 300), // int unit i64::MIN
        ("inst_2611", "\u{7528}\u{6237}-42", 0x83772893, 4467), // CJK unit
        ("inst_2611", "caf\u{e9}", 0x4663c44e, 3438),           // NFC e-acute
        ("inst_2611", "cafe\u{301}", 0x633f706b, 1931),         // NFD e + combining acute: no normalization
        ("inst_2611", "\u{1f642}", 0x7f4b6f34, 100),            // astral-plane unit (4 UTF-8 bytes)
        ("inst_2611", "a:b", 0x657b2217, 8471),                 // unit containing the separator
        ("installments-2026q4", "u-1001", 0x111080cd, 4221),    // salt override
        ("installments-2026q4", "u-1002", 0xa81423b9, 2153),    // salt override
        ("installments-2026q4", "12345", 0xde1f018a, 3962),     // salt override, int unit
        ("checkout", "u-1001", 0xe8c5548b, 6347),               // layer bucket
        ("checkout", "u-1002", 0x7a56ae17, 1015),               // layer bucket
        ("banner_color", "u-1001", 0x8a77a4a8, 6744),           // experiment inside a layer
        ("banner_copy", "u-1001", 0x115e80cb, 6027),            // experiment inside a layer
        ("", "u-1001", 0x2efe38ac, 2588),                       // empty salt hashes ":u-1001"
        ("\u{5b9e}\u{9a8c}", "\u{fc}", 0xbe954dcc, 5820),       // unicode salt and unit
    ];

    /// murmur3_x86_32 of the first n bytes of the fox sentence, seed 0, n = 0..=20:
    /// every tail length (0-3) and block count 0-5. Also from tests/ab_vectors.py.
    const FOX_PREFIXES: [u32; 21] = [
        0x00000000, 0xf54ab753, 0x5cc3a909, 0xaaddc01d, 0xbdafd560, 0x828ead68, 0xabc36756, 0x94956fb0, 0x5d45e822,
        0x073b3849, 0x5d6a1805, 0xbc3367f5, 0xbbef0550, 0x9428b338, 0x7d393bd1, 0x1e55c907, 0x9bf5473d, 0xd860a27b,
        0x6907db97, 0x60a2c22d, 0x1e4805f2,
    ];

    #[test]
    fn ruledeck_vectors() {
        assert!(RULEDECK_VECTORS.len() >= 20);
        for &(salt, unit, want_hash, want_bucket) in RULEDECK_VECTORS {
            assert_eq!(hash(salt, unit), want_hash, "hash({salt:?}, {unit:?})");
            assert_eq!(bucket(salt, unit), want_bucket, "bucket({salt:?}, {unit:?})");
            assert_eq!(want_hash % BUCKETS, want_bucket, "vector table is inconsistent");
        }
        // DESIGN.md's example test: u-1001 is in `treatment`, the second 50% group of inst_2611.
        assert_eq!(group_for(bucket("inst_2611", "u-1001"), &[5000, 5000]), Some(1));
    }

    #[test]
    fn int_units_hash_like_their_decimal_text() {
        let mut buf = String::new();
        for (value, text) in [(12345, "12345"), (0, "0"), (-5, "-5")] {
            assert_eq!(int_unit(value, &mut buf), text);
            assert_eq!(hash("inst_2611", &buf), hash("inst_2611", text));
        }
        assert_eq!(bucket("inst_2611", int_unit(12345, &mut buf)), 1762);
        assert_eq!(bucket("installments-2026q4", int_unit(12345, &mut buf)), 3962);
        assert_eq!(bucket("inst_2611", int_unit(i64::MAX, &mut buf)), 5789);
        assert_eq!(bucket("inst_2611", int_unit(i64::MIN, &mut buf)), 300);
    }

    // ---- incremental writes == contiguous bytes -------------------------------------------

    #[test]
    fn fox_prefixes_match_the_oracle_for_every_split() {
        let fox = b"The quick brown fox jumps over the lazy dog";
        for (n, &want) in FOX_PREFIXES.iter().enumerate() {
            let s = &fox[..n];
            assert_eq!(contiguous(s), want, "contiguous, n={n}");
            for i in 0..=n {
                for j in i..=n {
                    assert_eq!(incremental([&s[..i], &s[i..j], &s[j..]]), want, "n={n} split {i},{j}");
                }
            }
        }
    }

    /// Every split of every string of length 0..=20 into (a, b, c), over bytes that include
    /// non-ASCII values, hashes as the contiguous string; so does feeding one byte at a time.
    #[test]
    fn incremental_writes_equal_contiguous_at_every_split() {
        let pool: Vec<u8> = (0..20u8).map(|i| i.wrapping_mul(37).wrapping_add(0x61) ^ (i << 4)).collect();
        for n in 0..=20 {
            let s = &pool[..n];
            let want = contiguous(s);
            assert_eq!(incremental(s.chunks(1)), want, "one byte at a time, n={n}");
            for i in 0..=n {
                for j in i..=n {
                    assert_eq!(incremental([&s[..i], &s[i..j], &s[j..]]), want, "n={n} split {i},{j}");
                    let ones = s[..i].chunks(1).chain([&s[i..j]]).chain(s[j..].chunks(1));
                    assert_eq!(incremental(ones), want, "n={n} split {i},{j} one-byte");
                }
            }
        }
    }

    /// `hash(salt, unit)` equals hashing the concatenated `salt:unit` for every way of cutting a
    /// string of length 0..=20 into salt and unit (so the ':' lands at every block offset).
    #[test]
    fn hash_equals_hash_of_concatenation() {
        let text = "inst_2611u-1001-\u{e9}\u{7528}xyz";
        for n in (0..=text.len()).filter(|&n| text.is_char_boundary(n)) {
            let s = &text[..n];
            for i in (0..=n).filter(|&i| s.is_char_boundary(i)) {
                let (salt, unit) = s.split_at(i);
                assert_eq!(hash(salt, unit), contiguous(format!("{salt}:{unit}").as_bytes()), "{salt:?} {unit:?}");
            }
        }
    }

    // ---- int_unit -------------------------------------------------------------------------

    #[test]
    fn int_unit_matches_to_string_and_reuses_the_buffer() {
        let mut buf = String::with_capacity(20);
        let ptr = buf.as_ptr();
        let mut values = vec![0, 1, -1, 9, 10, -10, 99, 100, 12345, -12345, i64::MAX, i64::MIN, i64::MIN + 1];
        values.extend((0..64).map(|k| 1i64 << k >> 1));
        values.extend((0..19).map(|k| 10i64.pow(k)));
        values.extend((0..19).map(|k| -(10i64.pow(k)) + 1));
        for v in values {
            assert_eq!(int_unit(v, &mut buf), v.to_string());
        }
        assert_eq!(buf.as_ptr(), ptr, "20 bytes of capacity must never reallocate");
        buf.push_str("stale");
        assert_eq!(int_unit(7, &mut buf), "7", "the buffer is cleared first");
    }

    // ---- group_for ------------------------------------------------------------------------

    #[test]
    fn group_for_fifty_fifty() {
        let g = [5000, 5000];
        assert_eq!(group_for(0, &g), Some(0));
        assert_eq!(group_for(4999, &g), Some(0));
        assert_eq!(group_for(5000, &g), Some(1));
        assert_eq!(group_for(9999, &g), Some(1));
        assert_eq!(group_for(BUCKETS, &g), None);
    }

    #[test]
    fn group_for_thirds_leave_leftover_out() {
        let g = [3333, 3333];
        assert_eq!(group_for(3332, &g), Some(0));
        assert_eq!(group_for(3333, &g), Some(1));
        assert_eq!(group_for(6665, &g), Some(1));
        assert_eq!(group_for(6666, &g), None);
        assert_eq!(group_for(9999, &g), None);
        let g = [3333, 3333, 3333];
        assert_eq!(group_for(9998, &g), Some(2));
        assert_eq!(group_for(9999, &g), None, "33.33% × 3 leaves bucket 9999 out");
    }

    #[test]
    fn group_for_zero_percent_groups_never_match() {
        let g = [0, 5000, 0, 5000, 0];
        assert_eq!(group_for(0, &g), Some(1));
        assert_eq!(group_for(4999, &g), Some(1));
        assert_eq!(group_for(5000, &g), Some(3));
        assert_eq!(group_for(9999, &g), Some(3));
        assert!((0..BUCKETS).all(|b| !matches!(group_for(b, &g), Some(0 | 2 | 4))));
        assert_eq!(group_for(0, &[0, 0]), None);
        assert_eq!(group_for(0, &[]), None);
    }

    #[test]
    fn group_for_exactly_all_buckets() {
        assert!((0..BUCKETS).all(|b| group_for(b, &[10_000]) == Some(0)));
        let g = [2500, 2500, 2500, 2500];
        let counts = (0..BUCKETS).fold([0u32; 4], |mut c, b| {
            c[group_for(b, &g).unwrap()] += 1;
            c
        });
        assert_eq!(counts, [2500; 4]);
        assert_eq!(group_for(9999, &[9999]), None);
        assert_eq!(group_for(9998, &[9999]), Some(0));
        // No overflow, even for counts no compiler would accept.
        assert_eq!(group_for(u32::MAX, &[u32::MAX, u32::MAX]), Some(1));
    }

    #[test]
    fn growing_the_last_group_only_adds_units() {
        let before = [3000, 2000, 1000];
        let after = [3000, 2000, 2500];
        let earlier_grown = [3500, 2000, 1000];
        let (mut added, mut moved_by_earlier) = (0, 0);
        for i in 0..20_000 {
            let b = bucket("inst_2611", &format!("u-{i}"));
            match (group_for(b, &before), group_for(b, &after)) {
                (Some(g), now) => assert_eq!(now, Some(g), "u-{i} changed group when the last group grew"),
                (None, Some(g)) => {
                    assert_eq!(g, 2, "new units may only join the grown group");
                    added += 1;
                }
                (None, None) => {}
            }
            if group_for(b, &before).is_some() && group_for(b, &earlier_grown) != group_for(b, &before) {
                moved_by_earlier += 1;
            }
        }
        // 15% of 20,000 units join; growing an earlier group, by contrast, does move units.
        assert!((2700..3300).contains(&added), "{added} units joined");
        assert!(moved_by_earlier > 0);
    }

    #[test]
    fn different_salts_split_independently() {
        let g = [5000, 5000];
        let (mut agree, mut first_a, mut first_b) = (0u32, 0u32, 0u32);
        let mut buf = String::new();
        for i in 0..10_000 {
            let unit = int_unit(1_000_000 + i, &mut buf);
            let a = group_for(bucket("inst_2611", unit), &g).unwrap();
            let b = group_for(bucket("installments-2026q4", unit), &g).unwrap();
            agree += u32::from(a == b);
            first_a += u32::from(a == 0);
            first_b += u32::from(b == 0);
        }
        for (what, n) in [("agreement", agree), ("salt A group 0", first_a), ("salt B group 0", first_b)] {
            assert!((4700..=5300).contains(&n), "{what}: {n} of 10000, expected 50% ± 3%");
        }
        // The same salt always agrees with itself.
        assert!((0..1000).all(|i| bucket("s", &format!("u-{i}")) == bucket("s", &format!("u-{i}"))));
    }

    #[test]
    fn buckets_stay_in_range() {
        let mut buf = String::new();
        for i in -5000..5000 {
            assert!(bucket("checkout", int_unit(i, &mut buf)) < BUCKETS);
        }
    }

    // ---- in_range -------------------------------------------------------------------------

    #[test]
    fn in_range_is_half_open() {
        // `in checkout 0%..50%` and `50%..100%`
        assert!(in_range(0, 0, 5000));
        assert!(in_range(4999, 0, 5000));
        assert!(!in_range(5000, 0, 5000));
        assert!(in_range(5000, 5000, 10_000));
        assert!(in_range(9999, 5000, 10_000));
        assert!(!in_range(10_000, 5000, 10_000));
        assert!(!in_range(4999, 5000, 10_000));
        // Adjacent claims never share a bucket; an empty claim holds nothing.
        assert!((0..BUCKETS).all(|b| in_range(b, 0, 5000) != in_range(b, 5000, 10_000)));
        assert!((0..BUCKETS).all(|b| !in_range(b, 1234, 1234)));
        // The DESIGN layer example: u-1001 has layer bucket 6347, so it may enter banner_copy only.
        let layer = bucket("checkout", "u-1001");
        assert_eq!(layer, 6347);
        assert!(!in_range(layer, 0, 5000) && in_range(layer, 5000, 10_000));
    }
}
