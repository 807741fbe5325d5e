//! A story's fingerprint for finding copies: a MinHash sketch of the word shingles of
//! its text. Two items whose sketches agree on most of their hashes share most of
//! their shingles (the fraction estimates the Jaccard similarity of the two sets),
//! whatever else differs (headline, link, a dateline, a credit line).
//!
//! Finding candidates costs O(1) per item: the hashes are grouped into bands, and only
//! items that share a whole band are compared (locality-sensitive hashing). With 16
//! bands of 2 hashes, a pair at similarity 0.3 shares a band 78% of the time, at 0.5
//! 99%; unrelated texts (below 0.1) 15%, and those are then compared and told apart.
//!
//! The hashes are fixed (FNV-1a, then fixed multipliers), so a sketch means the same
//! to every instance and every version that keeps these constants.

/// Hashes in a sketch.
pub const HASHES: usize = 32;
/// Bands of two hashes each, for looking candidates up.
pub const BANDS: usize = 16;
const ROWS: usize = HASHES / BANDS;
/// Words in a shingle.
const SHINGLE: usize = 3;
/// A text with fewer words than this says too little to call anything its copy.
const MIN_WORDS: usize = 12;

/// A MinHash sketch of a text's word shingles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sketch([u32; HASHES]);

impl Sketch {
    /// The sketch of `parts` read as one text (title, summary, content, article);
    /// `None` when it has too few words to judge.
    pub fn of(parts: &[&str]) -> Option<Sketch> {
        let words: Vec<String> = parts
            .iter()
            .flat_map(|part| part.split(|c: char| !c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.len() < MIN_WORDS {
            return None;
        }
        let mut mins = [u32::MAX; HASHES];
        for shingle in words.windows(SHINGLE) {
            let base = fnv1a(shingle);
            for (min, (a, b)) in mins.iter_mut().zip(MULTIPLIERS.iter().zip(&OFFSETS)) {
                let h = (base.wrapping_mul(*a).wrapping_add(*b) >> 32) as u32;
                *min = (*min).min(h);
            }
        }
        Some(Sketch(mins))
    }

    /// The fraction of hashes the two sketches agree on: an estimate of the share of
    /// shingles the two texts have in common (of all the shingles of either).
    pub fn similarity(&self, other: &Sketch) -> f32 {
        let same = self.0.iter().zip(&other.0).filter(|(a, b)| a == b).count();
        same as f32 / HASHES as f32
    }

    /// One value per band: two sketches that share one are compared.
    pub fn bands(&self) -> [i64; BANDS] {
        let mut bands = [0; BANDS];
        for (i, (band, rows)) in bands.iter_mut().zip(self.0.chunks(ROWS)).enumerate() {
            let mut h = FNV_OFFSET ^ i as u64;
            for row in rows {
                h = (h ^ u64::from(*row)).wrapping_mul(FNV_PRIME);
            }
            *band = h as i64;
        }
        bands
    }

    /// The sketch as bytes, to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// A sketch stored with [`Sketch::to_bytes`]; `None` for bytes of another shape.
    pub fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        if bytes.len() != HASHES * 4 {
            return None;
        }
        let mut hashes = [0; HASHES];
        for (h, chunk) in hashes.iter_mut().zip(bytes.chunks_exact(4)) {
            *h = u32::from_le_bytes(chunk.try_into().ok()?);
        }
        Some(Sketch(hashes))
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a of a shingle's words, a space between them.
fn fnv1a(words: &[String]) -> u64 {
    let mut h = FNV_OFFSET;
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            h = (h ^ u64::from(b' ')).wrapping_mul(FNV_PRIME);
        }
        for byte in word.bytes() {
            h = (h ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
    }
    h
}

/// The hash functions `a·x + b` (mod 2⁶⁴, top 32 bits): odd multipliers and offsets
/// drawn once from SplitMix64 seeded with 1, and fixed here for good.
const MULTIPLIERS: [u64; HASHES] = splitmix::<HASHES>(1, true);
const OFFSETS: [u64; HASHES] = splitmix::<HASHES>(2, false);

const fn splitmix<const N: usize>(seed: u64, odd: bool) -> [u64; N] {
    let mut out = [0; N];
    let mut state = seed;
    let mut i = 0;
    while i < N {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out[i] = if odd { z | 1 } else { z };
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "Foreign ministers of the two countries met in Geneva on Monday for \
        three hours and agreed to meet again next week, officials said, adding that a \
        prisoner exchange of 12 detainees was discussed but not settled.";

    #[test]
    fn a_copy_with_its_own_headline_and_a_dateline_is_similar_and_shares_a_band() {
        let first = Sketch::of(&["Talks in Geneva end without a deal", BODY]).expect("sketch");
        let copy = Sketch::of(&[
            "Ministers agree to meet again",
            &format!("GENEVA (Wire) - {BODY} Reporting by A. Writer."),
        ])
        .expect("sketch");
        assert!(
            first.similarity(&copy) >= 0.5,
            "{}",
            first.similarity(&copy)
        );
        assert!(first.bands().iter().any(|b| copy.bands().contains(b)));
    }

    #[test]
    fn different_texts_are_far_apart_and_short_ones_have_no_sketch() {
        let first = Sketch::of(&["Talks", BODY]).expect("sketch");
        let other = Sketch::of(&[
            "Council approves budget",
            "The city council approved a budget of 40 million for next year on Tuesday \
             after a long debate about road repairs and the new library.",
        ])
        .expect("sketch");
        assert!(
            first.similarity(&other) < 0.2,
            "{}",
            first.similarity(&other)
        );
        assert_eq!(Sketch::of(&["Live: updates", "more soon"]), None);
    }

    #[test]
    fn a_sketch_is_the_same_after_storing_and_for_the_same_text() {
        let sketch = Sketch::of(&[BODY]).expect("sketch");
        assert_eq!(Sketch::from_bytes(&sketch.to_bytes()), Some(sketch.clone()));
        assert_eq!(Sketch::of(&[BODY]), Some(sketch));
        assert_eq!(Sketch::from_bytes(&[1, 2, 3]), None);
    }
}
