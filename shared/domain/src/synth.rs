//! Synthetic user events, deterministic for a seed: for benchmarks, tests and demos.

use serde_json::{Value, json};

/// A small, fast, deterministic generator (SplitMix64); not for cryptography.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// User agents of common devices, so enrichment sees realistic values.
pub const USER_AGENTS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
];

const EVENT_TYPES: [&str; 5] = ["page_view", "click", "add_to_cart", "purchase", "login"];

/// Settings for [`generate`].
#[derive(Debug, Clone)]
pub struct SynthConfig {
    pub seed: u64,
    pub users: u64,
    /// Start of the time range, milliseconds since the Unix epoch.
    pub start_millis: u64,
    /// Length of the time range.
    pub span_millis: u64,
    /// Share of events made invalid on purpose, from 0 to 1.
    pub invalid_ratio: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            users: 1_000,
            start_millis: 1_700_000_000_000,
            span_millis: 3_600_000,
            invalid_ratio: 0.0,
        }
    }
}

/// `count` events as JSON values; some invalid when `invalid_ratio` is above zero.
pub fn generate(config: &SynthConfig, count: usize) -> Vec<Value> {
    let mut random = SplitMix64::new(config.seed);
    (0..count).map(|_| one_event(config, &mut random)).collect()
}

fn one_event(config: &SynthConfig, random: &mut SplitMix64) -> Value {
    let user = format!("user-{:05}", random.below(config.users));
    let event_type = EVENT_TYPES[random.below(EVENT_TYPES.len() as u64) as usize];
    let timestamp = config.start_millis + random.below(config.span_millis);
    let agent = USER_AGENTS[random.below(USER_AGENTS.len() as u64) as usize];
    let mut data = json!({ "userAgent": agent, "page": format!("/p/{}", random.below(200)) });
    if event_type == "purchase" || event_type == "add_to_cart" {
        let cents = 100 + random.below(20_000);
        data["amount"] = json!(cents as f64 / 100.0);
        data["currency"] = json!("EUR");
    }
    let mut event =
        json!({ "userId": user, "eventType": event_type, "timestamp": timestamp, "data": data });
    if random.unit() < config.invalid_ratio {
        match random.below(4) {
            0 => drop(event.as_object_mut().map(|object| object.remove("userId"))),
            1 => event["timestamp"] = json!("yesterday"),
            2 => event["eventType"] = json!(""),
            _ => event["data"] = json!("not an object"),
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let config = SynthConfig {
            invalid_ratio: 0.1,
            ..SynthConfig::default()
        };
        assert_eq!(generate(&config, 50), generate(&config, 50));
        let other = SynthConfig {
            seed: 7,
            ..config.clone()
        };
        assert_ne!(generate(&config, 50), generate(&other, 50));
    }
}
