//! Request latency and availability of this loco-api process over the last 24 hours,
//! for `GET /status`.
//!
//! Every API request's duration lands in a fixed histogram of the minute it finished
//! in; the minutes form a ring of 1,440 slots, so memory is constant (about 400 KB)
//! whatever the traffic, and a percentile over 24 h is a sum of at most 1,440
//! histograms. Buckets grow by 25 %, so a reported percentile is the upper bound of its
//! bucket: at most 25 % above the true value, never below it.
//!
//! Uptime is this process's view (see [`Summary::uptime_ratio`]): the API as seen by the
//! database would need a heartbeat table, i.e. a migration, and each replica reporting
//! its own share is what a status page behind a load balancer shows anyway.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Minutes in the ring: 24 hours.
pub const MINUTES: usize = 1440;

/// Upper bounds of the histogram's buckets in microseconds: 50 µs growing by 25 % up to
/// past a minute (bucket 63 ends at 63.5 s); the last bucket takes everything slower.
const BUCKETS: usize = 65;

fn bounds() -> &'static [u64; BUCKETS] {
    static BOUNDS: std::sync::OnceLock<[u64; BUCKETS]> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut b = [0u64; BUCKETS];
        let mut v = 50.0f64;
        for slot in b.iter_mut() {
            *slot = v.round() as u64;
            v *= 1.25;
        }
        b[BUCKETS - 1] = u64::MAX;
        b
    })
}

/// The bucket a duration falls in.
pub fn bucket_of(d: Duration) -> usize {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    bounds().partition_point(|&b| b < us).min(BUCKETS - 1)
}

/// One minute of traffic.
#[derive(Debug, Clone)]
struct Minute {
    /// Which minute since start this slot holds; a stale slot is reset on first use.
    minute: u64,
    counts: [u32; BUCKETS],
    requests: u32,
    server_errors: u32,
}

impl Minute {
    fn empty(minute: u64) -> Self {
        Minute {
            minute,
            counts: [0; BUCKETS],
            requests: 0,
            server_errors: 0,
        }
    }
}

/// The latency and availability figures of the last 24 hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: u64,
    pub server_errors: u64,
    /// `None` without requests.
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    /// How much of the last 24 h this process has been running (it cannot know about
    /// the time before it started), in seconds.
    pub observed_seconds: u64,
    /// The share of the observed minutes in which this process was serving: running,
    /// and answering at least half of that minute's requests without a 5xx.
    pub uptime_ratio: f64,
    pub started_at: DateTime<Utc>,
}

/// The ring, shared by every request of the process.
#[derive(Debug)]
pub struct LatencyRecorder {
    start: Instant,
    started_at: DateTime<Utc>,
    ring: Mutex<Vec<Minute>>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> Self {
        LatencyRecorder {
            start: Instant::now(),
            started_at: Utc::now(),
            ring: Mutex::new((0..MINUTES).map(|_| Minute::empty(u64::MAX)).collect()),
        }
    }

    fn minute_now(&self) -> u64 {
        self.start.elapsed().as_secs() / 60
    }

    /// Records one request that took `took` and answered `status`.
    pub fn record(&self, took: Duration, status: u16) {
        self.record_at(self.minute_now(), took, status);
    }

    /// [`record`](Self::record) at a given minute since start (for tests).
    pub fn record_at(&self, minute: u64, took: Duration, status: u16) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut ring[(minute % MINUTES as u64) as usize];
        if slot.minute != minute {
            *slot = Minute::empty(minute);
        }
        slot.counts[bucket_of(took)] += 1;
        slot.requests = slot.requests.saturating_add(1);
        if status >= 500 {
            slot.server_errors = slot.server_errors.saturating_add(1);
        }
    }

    /// The figures of the last 24 hours.
    pub fn summary(&self) -> Summary {
        let elapsed = self.start.elapsed().as_secs();
        self.summary_at(elapsed / 60, elapsed)
    }

    /// [`summary`](Self::summary) at a given minute (and second) since start (for tests).
    pub fn summary_at(&self, minute: u64, elapsed_seconds: u64) -> Summary {
        let mut counts = [0u64; BUCKETS];
        let (mut requests, mut server_errors, mut failed_minutes) = (0u64, 0u64, 0u64);
        {
            let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            let oldest = minute.saturating_sub(MINUTES as u64 - 1);
            for slot in ring
                .iter()
                .filter(|s| s.minute >= oldest && s.minute <= minute)
            {
                for (total, c) in counts.iter_mut().zip(slot.counts.iter()) {
                    *total += u64::from(*c);
                }
                requests += u64::from(slot.requests);
                server_errors += u64::from(slot.server_errors);
                if slot.requests > 0 && slot.server_errors * 2 > slot.requests {
                    failed_minutes += 1;
                }
            }
        }
        let window = 24 * 3600;
        let observed_seconds = elapsed_seconds.min(window);
        // Minutes begun, so a process one second old has observed one minute.
        let observed_minutes = (observed_seconds / 60 + 1).min(MINUTES as u64);
        let uptime_ratio =
            observed_minutes.saturating_sub(failed_minutes) as f64 / observed_minutes as f64;
        Summary {
            requests,
            server_errors,
            p50: percentile(&counts, 0.50),
            p99: percentile(&counts, 0.99),
            observed_seconds,
            uptime_ratio,
            started_at: self.started_at,
        }
    }
}

/// The upper bound of the bucket holding the `q` quantile; `None` without samples. The
/// open-ended last bucket reports its lower bound.
fn percentile(counts: &[u64; BUCKETS], q: f64) -> Option<Duration> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    // The rank of the quantile, 1-based: the smallest count covering q of the samples.
    let rank = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            let us = if i == BUCKETS - 1 {
                bounds()[BUCKETS - 2]
            } else {
                bounds()[i]
            };
            return Some(Duration::from_micros(us));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn buckets_cover_every_duration_in_order() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_micros(50)), 0);
        assert_eq!(bucket_of(Duration::from_micros(51)), 1);
        assert!(bucket_of(ms(1)) < bucket_of(ms(10)));
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
        assert!(
            bounds()[BUCKETS - 2] > 60_000_000,
            "the last finite bound passes a minute"
        );
    }

    #[test]
    fn percentiles_are_bucket_upper_bounds_close_to_the_truth() {
        let r = LatencyRecorder::new();
        for _ in 0..98 {
            r.record_at(0, ms(2), 200);
        }
        r.record_at(0, ms(100), 200);
        r.record_at(0, ms(100), 200);
        let s = r.summary_at(0, 30);
        let (p50, p99) = (s.p50.unwrap(), s.p99.unwrap());
        assert!(p50 >= ms(2) && p50 <= ms(2) * 5 / 4, "{p50:?}");
        assert!(p99 >= ms(100) && p99 <= ms(125), "{p99:?}");
        assert_eq!(s.requests, 100);
    }

    #[test]
    fn minutes_older_than_a_day_fall_out_of_the_window() {
        let r = LatencyRecorder::new();
        r.record_at(0, ms(500), 200);
        r.record_at(10, ms(1), 200);
        let s = r.summary_at(MINUTES as u64 + 5, (MINUTES as u64 + 5) * 60);
        assert_eq!(s.requests, 1, "minute 0 is more than 24 h old");
        assert!(s.p99.unwrap() < ms(2));
        // The slot of minute 0 is reused by minute 1440 and starts empty.
        r.record_at(MINUTES as u64, ms(1), 200);
        let s = r.summary_at(MINUTES as u64, MINUTES as u64 * 60);
        assert_eq!(s.requests, 2);
    }

    #[test]
    fn uptime_counts_minutes_where_most_requests_failed_as_down() {
        let r = LatencyRecorder::new();
        // Minute 3: 3 of 4 requests failed. Minute 4: 1 of 4, still serving.
        for status in [500, 503, 500, 200] {
            r.record_at(3, ms(1), status);
        }
        for status in [500, 200, 200, 200] {
            r.record_at(4, ms(1), status);
        }
        let s = r.summary_at(9, 9 * 60 + 30);
        assert_eq!(s.server_errors, 4);
        assert_eq!(s.observed_seconds, 570);
        assert!(
            (s.uptime_ratio - 9.0 / 10.0).abs() < 1e-9,
            "{}",
            s.uptime_ratio
        );
        let empty = LatencyRecorder::new().summary_at(0, 1);
        assert_eq!(empty.p99, None);
        assert_eq!(empty.uptime_ratio, 1.0);
    }
}
