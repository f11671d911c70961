//! `enrich`: partition keys, processing time, device, user profile and the risk features.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StorageError;
use crate::event::{SourceRef, UserEvent};
use crate::ports::ProfileTable;
use crate::stages::validate::ValidEvent;

/// A user's profile as kept in the profiles table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub user_id: String,
    pub segment: String,
    pub country: String,
    /// When the account was created, in milliseconds since the Unix epoch.
    pub signup_timestamp: i64,
    /// The user's usual purchase amount.
    pub average_amount: f64,
    /// Devices seen before, as `os/browser`.
    #[serde(default)]
    pub known_devices: Vec<String>,
}

/// What enrichment adds from a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSummary {
    pub segment: String,
    pub country: String,
}

/// The device, operating system and browser parsed from `data.userAgent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// `pc`, `smartphone`, `mobilephone`, `crawler`, `appliance`, `misc` or `unknown`.
    pub category: String,
    pub os: String,
    pub os_version: String,
    pub browser: String,
    pub browser_version: String,
}

impl Device {
    /// The key stored in a profile's known devices.
    pub fn key(&self) -> String {
        format!("{}/{}", self.os, self.browser)
    }

    /// Whether `key` is this device's [`Device::key`], compared without building the key.
    fn is_key(&self, key: &str) -> bool {
        key.len() == self.os.len() + 1 + self.browser.len()
            && key.starts_with(self.os.as_str())
            && key.ends_with(self.browser.as_str())
            && key.as_bytes()[self.os.len()] == b'/'
    }

    fn is_mobile(&self) -> bool {
        matches!(self.category.as_str(), "smartphone" | "mobilephone")
    }
}

/// Hive-style partition values, from the event time in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Partition {
    /// `YYYY-MM-DD`.
    pub dt: String,
    /// `HH`, 00 to 23.
    pub hour: String,
}

/// The names of the risk model's features, in the order of [`RiskFeatures::to_row`].
pub const FEATURE_NAMES: [&str; 9] = [
    "amount",
    "log_amount",
    "amount_to_user_average",
    "hour_sin",
    "hour_cos",
    "is_new_device",
    "user_events_in_batch",
    "account_age_days",
    "is_mobile",
];

/// The numeric features the risk model reads, named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct RiskFeatures {
    /// `data.amount`, or 0.
    pub amount: f32,
    /// `ln(1 + amount)`.
    pub log_amount: f32,
    /// Amount over the user's usual amount (1 without a profile or usual amount).
    pub amount_to_user_average: f32,
    /// Hour of day (UTC) on the unit circle, so 23h and 0h are close.
    pub hour_sin: f32,
    pub hour_cos: f32,
    /// 1 when the device is not among the profile's known devices (or there is no profile).
    pub is_new_device: f32,
    /// How many events of the same user are in this batch (bursts).
    pub user_events_in_batch: f32,
    /// Days from signup to the event (0 without a profile).
    pub account_age_days: f32,
    /// 1 for smartphones and mobile phones.
    pub is_mobile: f32,
}

impl RiskFeatures {
    /// The features in [`FEATURE_NAMES`] order.
    pub fn to_row(&self) -> [f32; FEATURE_NAMES.len()] {
        [
            self.amount,
            self.log_amount,
            self.amount_to_user_average,
            self.hour_sin,
            self.hour_cos,
            self.is_new_device,
            self.user_events_in_batch,
            self.account_age_days,
            self.is_mobile,
        ]
    }
}

/// An event with everything enrichment adds.
///
/// The parts that many events of a batch have in common (the processing time, the
/// partition, the device, the profile's segment and country) are shared between them
/// rather than copied into each; their JSON is the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichedEvent {
    pub event: UserEvent,
    pub source: SourceRef,
    pub partition: Arc<Partition>,
    /// When the pipeline processed the event, RFC 3339 in UTC.
    pub processed_at: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Arc<Device>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Arc<ProfileSummary>>,
    pub features: RiskFeatures,
}

/// Enriches a batch. `profiles` holds the profiles found (owned, or shared with a
/// [`ProfileCache`]); users without one are not an error.
pub fn enrich<P: Borrow<UserProfile>>(
    events: Vec<ValidEvent>,
    profiles: &HashMap<String, P>,
    now_millis: i64,
) -> Vec<EnrichedEvent> {
    let processed_at: Arc<str> = Arc::from(rfc3339_millis(now_millis));
    let mut per_user: foldhash::HashMap<&str, usize> =
        HashMap::with_capacity_and_hasher(events.len(), Default::default());
    for valid in &events {
        *per_user.entry(valid.event.user_id.as_str()).or_default() += 1;
    }
    let events_of_user: Vec<usize> = events
        .iter()
        .map(|valid| per_user[valid.event.user_id.as_str()])
        .collect();
    drop(per_user);
    // Parsing a user agent is the costliest step, and agents repeat within a batch; so do
    // partitions (by the hour) and profile summaries.
    let mut devices: foldhash::HashMap<String, Arc<Device>> = Default::default();
    let mut partitions: foldhash::HashMap<i64, Arc<Partition>> = Default::default();
    let mut summaries: foldhash::HashMap<(&str, &str), Arc<ProfileSummary>> = Default::default();
    events
        .into_iter()
        .zip(events_of_user)
        .map(|(valid, events_of_user)| {
            let profile = profiles.get(&valid.event.user_id).map(Borrow::borrow);
            let device = valid
                .event
                .user_agent()
                .map(|agent| match devices.get(agent) {
                    Some(device) => device.clone(),
                    None => {
                        let device = Arc::new(parse_user_agent(agent));
                        devices.insert(agent.to_owned(), device.clone());
                        device
                    }
                });
            let features = risk_features(&valid.event, device.as_deref(), profile, events_of_user);
            let millis = valid.event.timestamp_millis().floor() as i64;
            let partition = partitions
                .entry(millis.div_euclid(3_600_000))
                .or_insert_with(|| Arc::new(partition_of(millis as f64)))
                .clone();
            let profile = profile.map(|found| {
                summaries
                    .entry((found.segment.as_str(), found.country.as_str()))
                    .or_insert_with(|| {
                        Arc::new(ProfileSummary {
                            segment: found.segment.clone(),
                            country: found.country.clone(),
                        })
                    })
                    .clone()
            });
            EnrichedEvent {
                partition,
                processed_at: processed_at.clone(),
                device,
                profile,
                features,
                event: valid.event,
                source: valid.source,
            }
        })
        .collect()
}

/// The UTC date and hour of a timestamp in milliseconds.
pub fn partition_of(timestamp_millis: f64) -> Partition {
    let time = datetime_millis(timestamp_millis.floor() as i64);
    Partition {
        dt: format!("{:04}-{:02}-{:02}", time.year(), time.month(), time.day()),
        hour: format!("{:02}", time.hour()),
    }
}

/// RFC 3339 with milliseconds, in UTC.
pub fn rfc3339_millis(millis: i64) -> String {
    datetime_millis(millis).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn datetime_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Parses a user agent with `woothee`; unknown parts are `"UNKNOWN"`, as woothee reports them.
pub fn parse_user_agent(agent: &str) -> Device {
    match woothee::parser::Parser::new().parse(agent) {
        Some(result) => Device {
            category: result.category.to_owned(),
            os: result.os.to_owned(),
            os_version: result.os_version.to_string(),
            browser: result.name.to_owned(),
            browser_version: result.version.to_owned(),
        },
        None => Device {
            category: "unknown".to_owned(),
            os: "UNKNOWN".to_owned(),
            os_version: "UNKNOWN".to_owned(),
            browser: "UNKNOWN".to_owned(),
            browser_version: "UNKNOWN".to_owned(),
        },
    }
}

fn risk_features(
    event: &UserEvent,
    device: Option<&Device>,
    profile: Option<&UserProfile>,
    events_of_user: usize,
) -> RiskFeatures {
    let amount = event.amount().unwrap_or(0.0).max(0.0);
    let timestamp = event.timestamp_millis();
    let hour_fraction = (timestamp.rem_euclid(86_400_000.0)) / 3_600_000.0;
    let angle = hour_fraction / 24.0 * std::f64::consts::TAU;
    let amount_to_user_average = match profile {
        Some(found) if found.average_amount > 0.0 => amount / found.average_amount,
        _ => 1.0,
    };
    let is_new_device = match (profile, device) {
        (Some(found), Some(device)) => {
            !found.known_devices.iter().any(|known| device.is_key(known))
        }
        (Some(_), None) => false,
        (None, _) => true,
    };
    let account_age_days = profile.map_or(0.0, |found| {
        ((timestamp - found.signup_timestamp as f64) / 86_400_000.0).max(0.0)
    });
    RiskFeatures {
        amount: amount as f32,
        log_amount: amount.ln_1p() as f32,
        amount_to_user_average: amount_to_user_average as f32,
        hour_sin: angle.sin() as f32,
        hour_cos: angle.cos() as f32,
        is_new_device: f32::from(u8::from(is_new_device)),
        user_events_in_batch: events_of_user as f32,
        account_age_days: account_age_days as f32,
        is_mobile: f32::from(u8::from(device.is_some_and(Device::is_mobile))),
    }
}

/// A warm-container cache of profiles in front of a [`ProfileTable`], with a time to live.
///
/// Users without a profile are cached too, so a burst of unknown users costs one lookup. A
/// lookup shares the cached profiles rather than copying them (with their known devices)
/// for every batch.
pub struct ProfileCache {
    ttl_millis: i64,
    max_entries: usize,
    entries: Mutex<HashMap<String, CachedProfile>>,
}

struct CachedProfile {
    profile: Option<Arc<UserProfile>>,
    fetched_at: i64,
}

/// How a lookup was served, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LookupStats {
    pub hits: usize,
    pub fetched: usize,
}

impl ProfileCache {
    pub fn new(ttl_millis: i64, max_entries: usize) -> Self {
        Self {
            ttl_millis,
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The profiles of `user_ids` that exist, fetching only those not cached or expired.
    pub async fn lookup(
        &self,
        table: &dyn ProfileTable,
        user_ids: &[String],
        now_millis: i64,
    ) -> Result<(HashMap<String, Arc<UserProfile>>, LookupStats), StorageError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        let mut stats = LookupStats::default();
        {
            let entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut asked = HashSet::new();
            for user_id in user_ids {
                if !asked.insert(user_id.as_str()) {
                    continue;
                }
                match entries.get(user_id) {
                    Some(cached) if now_millis - cached.fetched_at < self.ttl_millis => {
                        stats.hits += 1;
                        if let Some(profile) = &cached.profile {
                            found.insert(user_id.clone(), Arc::clone(profile));
                        }
                    }
                    _ => missing.push(user_id.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok((found, stats));
        }
        stats.fetched = missing.len();
        let mut fetched = table.get_profiles(&missing).await?;
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() + missing.len() > self.max_entries {
            entries.retain(|_, cached| now_millis - cached.fetched_at < self.ttl_millis);
            if entries.len() + missing.len() > self.max_entries {
                entries.clear();
            }
        }
        for user_id in missing {
            let profile = fetched.remove(&user_id).map(Arc::new);
            if let Some(profile) = &profile {
                found.insert(user_id.clone(), Arc::clone(profile));
            }
            entries.insert(
                user_id,
                CachedProfile {
                    profile,
                    fetched_at: now_millis,
                },
            );
        }
        Ok((found, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct CountingTable {
        calls: AtomicUsize,
    }

    #[async_trait]
    impl ProfileTable for CountingTable {
        async fn get_profiles(
            &self,
            user_ids: &[String],
        ) -> Result<HashMap<String, UserProfile>, StorageError> {
            self.calls.fetch_add(user_ids.len(), Ordering::SeqCst);
            Ok(user_ids
                .iter()
                .filter(|id| id.as_str() == "known")
                .map(|id| {
                    let profile = UserProfile {
                        user_id: id.clone(),
                        segment: "regular".into(),
                        country: "DE".into(),
                        signup_timestamp: 0,
                        average_amount: 10.0,
                        known_devices: vec![],
                    };
                    (id.clone(), profile)
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn the_cache_serves_hits_and_misses_until_they_expire() {
        let table = CountingTable {
            calls: AtomicUsize::new(0),
        };
        let cache = ProfileCache::new(1_000, 100);
        let ids = vec!["known".to_owned(), "absent".to_owned(), "known".to_owned()];
        let (found, stats) = cache.lookup(&table, &ids, 0).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            stats,
            LookupStats {
                hits: 0,
                fetched: 2
            }
        );
        let (_, stats) = cache.lookup(&table, &ids, 999).await.unwrap();
        assert_eq!(
            stats,
            LookupStats {
                hits: 2,
                fetched: 0
            }
        );
        let (found, stats) = cache.lookup(&table, &ids, 1_000).await.unwrap();
        assert_eq!(
            stats,
            LookupStats {
                hits: 0,
                fetched: 2
            }
        );
        assert!(found.contains_key("known"));
        assert_eq!(table.calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn partitions_are_utc() {
        assert_eq!(
            partition_of(1_700_000_000_000.0),
            Partition {
                dt: "2023-11-14".into(),
                hour: "22".into()
            }
        );
        assert_eq!(
            partition_of(0.0),
            Partition {
                dt: "1970-01-01".into(),
                hour: "00".into()
            }
        );
    }

    #[test]
    fn user_agents_are_parsed() {
        let device = parse_user_agent(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(device.category, "smartphone");
        assert_eq!(device.os, "iPhone");
        assert_eq!(device.browser, "Safari");
    }

    fn valid(user: &str, timestamp: u64, agent: &str) -> ValidEvent {
        let event: UserEvent = serde_json::from_value(serde_json::json!({
            "eventId": format!("evt-{user}-{timestamp}"), "userId": user, "eventType": "click",
            "timestamp": timestamp, "data": {"userAgent": agent},
        }))
        .unwrap();
        ValidEvent {
            source: SourceRef {
                kind: crate::event::SourceKind::Direct,
                id: format!("item-{timestamp}"),
                index: 0,
            },
            event,
        }
    }

    #[test]
    fn events_share_their_common_parts_and_write_them_in_full() {
        let agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        let profile = UserProfile {
            user_id: "u1".into(),
            segment: "vip".into(),
            country: "DE".into(),
            signup_timestamp: 0,
            average_amount: 10.0,
            known_devices: vec!["Linux/Chrome".into()],
        };
        let mut second = profile.clone();
        second.user_id = "u2".into();
        let profiles = HashMap::from([("u1".to_owned(), profile), ("u2".to_owned(), second)]);
        let hour = 1_700_000_000_000;
        let events = vec![
            valid("u1", hour, agent),
            valid("u2", hour + 1_000, agent),
            valid("u3", hour + 3_600_000, agent),
        ];
        let enriched = enrich(events, &profiles, 0);
        assert!(Arc::ptr_eq(&enriched[0].partition, &enriched[1].partition));
        assert_eq!(enriched[2].partition.hour, "23");
        let device = |index: usize| enriched[index].device.clone().unwrap();
        assert!(Arc::ptr_eq(&device(0), &device(2)));
        let summary = |index: usize| enriched[index].profile.clone().unwrap();
        assert!(Arc::ptr_eq(&summary(0), &summary(1)));
        assert!(enriched[2].profile.is_none());
        assert!(Arc::ptr_eq(
            &enriched[0].processed_at,
            &enriched[2].processed_at
        ));
        // A known device, compared without building its key; no profile means a new device.
        assert_eq!(enriched[0].features.is_new_device, 0.0);
        assert_eq!(enriched[2].features.is_new_device, 1.0);
        let json = serde_json::to_value(&enriched[0]).unwrap();
        assert_eq!(
            json["partition"],
            serde_json::json!({"dt": "2023-11-14", "hour": "22"})
        );
        assert_eq!(
            json["profile"],
            serde_json::json!({"segment": "vip", "country": "DE"})
        );
        assert_eq!(json["device"]["browser"], "Chrome");
        assert_eq!(json["processedAt"], "1970-01-01T00:00:00.000Z");
        let back: EnrichedEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, enriched[0]);
    }

    #[test]
    fn a_device_key_is_matched_exactly() {
        let device = parse_user_agent(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        );
        for key in [
            "Linux/Chrome",
            "Linux/Chrom",
            "Linux/Chromee",
            "Linux-Chrome",
            "LinuxChrome",
            "",
            "Linux/",
        ] {
            assert_eq!(device.is_key(key), device.key() == key, "{key:?}");
        }
    }
}
