//! A small seeded pseudo-random generator (SplitMix64), so that jitter, `States.UUID` and
//! `States.MathRandom` are reproducible for a given `ExecutionOptions::seed`.

/// SplitMix64: fast, statistically good enough for jitter and test identifiers, not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A number in `[0, 1)` with 53 random bits.
    pub(crate) fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `[0, bound)`; `bound` must not be zero.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        // The modulo bias is at most bound / 2^64, negligible for the ranges used here.
        self.next_u64() % bound.max(1)
    }

    /// Sixteen random bytes formatted as a version 4 UUID.
    pub(crate) fn uuid_v4(&mut self) -> String {
        let high = self.next_u64().to_be_bytes();
        let low = self.next_u64().to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&high);
        bytes[8..].copy_from_slice(&low);
        bytes[6] = (bytes[6] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_uuid_shape() {
        let mut first = SplitMix64::new(7);
        let mut second = SplitMix64::new(7);
        assert_eq!(first.next_u64(), second.next_u64());
        let uuid = first.uuid_v4();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
        let unit = first.next_unit();
        assert!((0.0..1.0).contains(&unit));
        assert!(first.below(10) < 10);
    }
}
