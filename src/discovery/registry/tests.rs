use std::sync::Mutex;

use super::*;
use crate::discovery::table::Lookup;

/// Records the events a config's scheduler would run (the runtime's tests use it too).
#[derive(Default)]
pub(crate) struct FakeScheduler(Mutex<Vec<u64>>);

impl Wake for FakeScheduler {
    fn wake(&self, event: u64) {
        self.0.lock().unwrap().push(event);
    }
}

impl FakeScheduler {
    pub(crate) fn take(&self) -> Vec<u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

const PAGE: &[u8] =
    br#"{"Functions":[{"FunctionName":"a"},{"FunctionName":"b"}],"NextMarker":"m"}"#;
const LAST: &[u8] = br#"{"Functions":[{"FunctionName":"c"}],"NextMarker":null}"#;

fn settings() -> DiscoverySettings {
    DiscoverySettings {
        enabled: true,
        cluster: "lambda".into(),
        refresh_interval: Duration::from_secs(60),
        ..Default::default()
    }
}

fn key() -> DiscoveryKey {
    DiscoveryKey::for_test("acct")
}

struct World {
    registry: Registry,
    t0: Instant,
    wall: SystemTime,
}

impl World {
    fn new() -> Self {
        Self {
            // Seed 0 would still jitter (the generator never yields 0 twice); tests that need
            // exact delays read them back instead of assuming them.
            registry: Registry::new(Jitter::new(42)),
            t0: Instant::now(),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn join(&mut self, config: u64, waker: &Arc<FakeScheduler>, at: u64) -> Joined {
        self.join_with(config, waker, at, &settings())
    }

    fn join_with(
        &mut self,
        config: u64,
        waker: &Arc<FakeScheduler>,
        at: u64,
        settings: &DiscoverySettings,
    ) -> Joined {
        let now = self.at(at);
        let by = Joiner {
            config,
            waker: Arc::clone(waker) as Arc<dyn Wake>,
            event: 0,
        };
        self.registry.join(key(), "acct", settings, by, now)
    }

    /// Starts a refresh through `member` and sends its first page (callout `id`).
    fn start(&mut self, member: MemberId, id: u64, at: u64) -> bool {
        let now = self.at(at);
        if self.registry.on_event(member, now, self.wall).is_none() {
            return false;
        }
        let seq = self.registry.begin_send(member).unwrap();
        assert!(
            self.registry
                .sent(member, seq, Ok(id), now, self.wall)
                .is_none()
        );
        true
    }

    /// Answers callout `id` of `member` with `body`; returns the next step.
    fn reply(&mut self, member: MemberId, id: u64, body: &[u8], at: u64) -> Option<Step> {
        let now = self.at(at);
        let (m, out) = self
            .registry
            .on_reply(&[member], id, Ok((200, body)), now, self.wall)?;
        assert_eq!(m, member);
        Some(out.step)
    }

    /// A whole two-page refresh through `member`.
    fn refresh(&mut self, member: MemberId, at: u64) {
        assert!(self.start(member, 1, at), "refresh starts");
        let Some(Step::Send(_)) = self.reply(member, 1, PAGE, at) else {
            panic!("second page")
        };
        let seq = self.registry.begin_send(member).unwrap();
        self.registry
            .sent(member, seq, Ok(2), self.at(at), self.wall);
        let Some(Step::Wait(_)) = self.reply(member, 2, LAST, at) else {
            panic!("done")
        };
    }
}

#[test]
fn a_new_config_starts_with_the_last_good_table_and_becomes_the_only_poller() {
    let mut w = World::new();
    let s1 = Arc::new(FakeScheduler::default());
    let first = w.join(1, &s1, 0);
    assert_eq!((first.carried, first.previous_poller), (None, None));
    assert_eq!(first.table.lookup("a"), Lookup::NotReady);
    assert_eq!(w.registry.fire_due(w.at(0)), Some(w.at(0) + WAKE_RETRY));
    assert_eq!(
        s1.take(),
        [0],
        "a new discovery's first refresh is due at once"
    );
    w.refresh(first.member, 0);
    assert_eq!(first.table.lookup("c"), Lookup::Found);

    // An LDS update: config 2 with the same upstream.
    let s2 = Arc::new(FakeScheduler::default());
    let second = w.join(2, &s2, 10);
    assert!(Arc::ptr_eq(&first.table, &second.table), "one shared table");
    assert_eq!(second.carried, Some(3), "no discovery_pending for config 2");
    assert_eq!(second.previous_poller, Some(1));
    assert_eq!(second.table.lookup("b"), Lookup::Found);
    assert_eq!(
        w.registry.polling(first.member),
        Some(Polling {
            config: 2,
            configs: 2
        })
    );

    // The schedule carries over too: nothing is due before the interval (±10 %) is up.
    let due = w.registry.due(second.member).unwrap();
    let waited = due - w.at(0);
    assert!(
        waited >= Duration::from_secs(54) && waited <= Duration::from_secs(66),
        "{waited:?}"
    );
    assert_eq!(w.registry.fire_due(w.at(10)), Some(due));
    assert!(s1.take().is_empty() && s2.take().is_empty());

    // When it is due, only the newest config is woken, and the old one cannot start.
    w.registry.fire_due(due);
    assert_eq!(s2.take(), [0]);
    assert!(s1.take().is_empty());
    assert!(!w.start(first.member, 7, 70), "config 1 no longer polls");
    w.refresh(second.member, 70);
}

#[test]
fn a_stale_event_of_an_old_poller_hands_the_refresh_to_the_new_one() {
    let mut w = World::new();
    let s1 = Arc::new(FakeScheduler::default());
    let first = w.join(1, &s1, 0);
    w.registry.fire_due(w.at(0));
    assert_eq!(s1.take(), [0]);
    // Config 2 joins before config 1's event runs.
    let s2 = Arc::new(FakeScheduler::default());
    let second = w.join(2, &s2, 0);
    assert!(!w.start(first.member, 1, 0));
    w.registry.fire_due(w.at(0));
    assert_eq!(s2.take(), [0], "due again at once, for the poller");
    assert!(w.start(second.member, 1, 0));
}

#[test]
fn a_refresh_in_progress_finishes_through_the_config_that_started_it() {
    let mut w = World::new();
    let s1 = Arc::new(FakeScheduler::default());
    let first = w.join(1, &s1, 0);
    assert!(w.start(first.member, 1, 0));
    let s2 = Arc::new(FakeScheduler::default());
    let second = w.join(2, &s2, 1);
    assert_eq!(second.carried, None, "nothing to carry yet");
    assert_eq!(
        w.registry
            .on_reply(&[second.member], 1, Ok((200, PAGE)), w.at(1), w.wall),
        None,
        "the reply belongs to config 1's callout"
    );
    let Some(Step::Send(next)) = w.reply(first.member, 1, PAGE, 1) else {
        panic!()
    };
    assert!(next.path_and_query.contains("Marker=m"));
    assert!(!w.start(second.member, 5, 1), "one refresh at a time");
    let seq = w.registry.begin_send(first.member).unwrap();
    w.registry.sent(first.member, seq, Ok(2), w.at(1), w.wall);
    assert!(matches!(
        w.reply(first.member, 2, LAST, 2),
        Some(Step::Wait(_))
    ));
    assert_eq!(second.table.lookup("c"), Lookup::Found);
    let due = w.registry.due(second.member).unwrap();
    w.registry.fire_due(due);
    assert_eq!((s1.take(), s2.take()), (vec![], vec![0]));
}

#[test]
fn when_the_sender_is_destroyed_mid_refresh_a_survivor_restarts_it_at_once() {
    let mut w = World::new();
    let s1 = Arc::new(FakeScheduler::default());
    let s2 = Arc::new(FakeScheduler::default());
    let first = w.join(1, &s1, 0);
    w.refresh(first.member, 0);
    let second = w.join(2, &s2, 10);
    // Config 2 polls; it is destroyed (say its listener was removed) mid-refresh.
    let due = w.registry.due(second.member).unwrap();
    w.registry.fire_due(due);
    assert_eq!(s2.take(), [0]);
    assert!(w.start(second.member, 9, 70));
    let polling = w.registry.leave(second.member, w.at(71));
    assert_eq!(
        polling,
        Some(Polling {
            config: 1,
            configs: 1
        })
    );
    assert_eq!(
        s1.take(),
        [SYNC_EVENT],
        "the survivor re-publishes its gauges"
    );
    assert_eq!(w.registry.due(first.member), Some(w.at(71)));
    // Envoy cancelled config 2's callouts; a reply would find no one waiting.
    assert_eq!(
        w.registry
            .on_reply(&[second.member], 9, Ok((200, LAST)), w.at(71), w.wall),
        None
    );
    w.registry.fire_due(w.at(71));
    assert_eq!(s1.take(), [0]);
    w.refresh(first.member, 71);
    assert_eq!(
        first.table.lookup("a"),
        Lookup::Found,
        "the table was never emptied"
    );
}

#[test]
fn a_woken_poller_that_is_destroyed_passes_the_refresh_on() {
    let mut w = World::new();
    let s1 = Arc::new(FakeScheduler::default());
    let s2 = Arc::new(FakeScheduler::default());
    let first = w.join(1, &s1, 0);
    let second = w.join(2, &s2, 0);
    w.registry.fire_due(w.at(0));
    assert_eq!(s2.take(), [0]);
    w.registry.leave(second.member, w.at(1));
    assert_eq!(s1.take(), [SYNC_EVENT]);
    w.registry.fire_due(w.at(1));
    assert_eq!(s1.take(), [0], "not 30 s later");
    assert!(w.start(first.member, 1, 1));
}

#[test]
fn the_last_config_takes_the_discovery_with_it() {
    let mut w = World::new();
    let s1 = Arc::new(FakeScheduler::default());
    let first = w.join(1, &s1, 0);
    w.refresh(first.member, 0);
    assert_eq!(w.registry.len(), 1);
    assert_eq!(w.registry.leave(first.member, w.at(1)), None);
    assert!(w.registry.is_empty());
    assert_eq!(w.registry.fire_due(w.at(100)), None);
    assert!(s1.take().is_empty(), "nothing wakes a destroyed config");
    let again = w.join(3, &s1, 2);
    assert_eq!((again.carried, again.previous_poller), (None, None));
}

#[test]
fn different_identities_do_not_share() {
    let mut w = World::new();
    let s = Arc::new(FakeScheduler::default());
    let a = w.join(1, &s, 0);
    let by = Joiner {
        config: 2,
        waker: Arc::clone(&s) as Arc<dyn Wake>,
        event: 1,
    };
    let b = w.registry.join(
        DiscoveryKey::for_test("other account"),
        "acct",
        &settings(),
        by,
        w.at(0),
    );
    assert!(!Arc::ptr_eq(&a.table, &b.table));
    assert_eq!(b.previous_poller, None);
    w.registry.fire_due(w.at(0));
    let mut events = s.take();
    events.sort_unstable();
    assert_eq!(events, [0, 1], "both poll");
}

#[test]
fn many_updates_still_poll_once_per_interval() {
    // 14 LDS updates, one every 20 s, none of the old configs destroyed (600 s drain): the
    // account sees one refresh per interval, not one per config.
    let mut w = World::new();
    let schedulers: Vec<Arc<FakeScheduler>> = (0..15)
        .map(|_| Arc::new(FakeScheduler::default()))
        .collect();
    let mut members = Vec::new();
    let mut refreshes = 0;
    let mut next_join = 0u64;
    for second in 0..=300u64 {
        if next_join < 15 && second == next_join * 20 {
            members.push(
                w.join(next_join + 1, &schedulers[next_join as usize], second)
                    .member,
            );
            next_join += 1;
        }
        w.registry.fire_due(w.at(second));
        for (i, s) in schedulers.iter().enumerate() {
            for _ in s.take() {
                if w.start(members[i], 1, second) {
                    refreshes += 1;
                    w.reply(members[i], 1, LAST, second);
                }
            }
        }
    }
    // 300 s at 60 s ± 10 %: the first one at 0, then 4 or 5 more.
    assert!((5..=6).contains(&refreshes), "{refreshes} refreshes");
}

#[test]
fn a_panic_drops_the_refresh_and_restarts_after_a_growing_back_off() {
    let mut w = World::new();
    let s1 = Arc::new(FakeScheduler::default());
    let first = w.join(1, &s1, 0);
    w.refresh(first.member, 0);
    w.registry.fire_due(w.registry.due(first.member).unwrap());
    assert_eq!(s1.take(), [0]);
    assert!(w.start(first.member, 5, 60));
    // Say parsing the reply panicked: the caller catches it and repairs the entry.
    let delays: Vec<_> = (0..3)
        .map(|_| w.registry.recover(first.member, w.at(60)).unwrap())
        .collect();
    assert!(delays[0] <= Duration::from_secs(1) && delays[0] >= Duration::from_millis(750));
    assert!(delays[1] > delays[0] && delays[2] > delays[1], "{delays:?}");
    assert_eq!(w.registry.due(first.member), Some(w.at(60) + delays[2]));
    assert_eq!(
        w.registry
            .on_reply(&[first.member], 5, Ok((200, LAST)), w.at(61), w.wall),
        None,
        "the dropped refresh's reply is ignored"
    );
    assert_eq!(first.table.lookup("a"), Lookup::Found, "the list stays");
    w.registry.fire_due(w.at(70));
    assert_eq!(s1.take(), [0]);
    w.refresh(first.member, 70);
    // A success resets the panic back-off.
    assert!(w.registry.recover(first.member, w.at(80)).unwrap() <= Duration::from_secs(1));
}

#[test]
fn jitter_differs_between_processes_and_stays_within_bounds() {
    let mut a = Jitter::new(1);
    let mut b = Jitter::new(2);
    let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
    let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
    assert_ne!(xs, ys);
    let interval = Duration::from_secs(60);
    let mut lo = Duration::MAX;
    let mut hi = Duration::ZERO;
    for _ in 0..1000 {
        let d = crate::discovery::backoff::spread(interval, a.next_u64());
        lo = lo.min(d);
        hi = hi.max(d);
    }
    assert!(lo >= Duration::from_secs(54) && hi <= Duration::from_secs(66));
    assert!(
        lo < Duration::from_secs(55) && hi > Duration::from_secs(65),
        "spread out"
    );
    let p = Jitter::from_process().next_u64();
    assert_ne!(p, Jitter::new(1).next_u64());
}

#[test]
fn the_key_covers_the_identity_and_not_the_interval() {
    use crate::config::FilterConfig;
    let key = |discovery: &str, host: &str| {
        let doc = format!(
            r#"{{"name":"acct","spec":{{"region":"us-east-1","secret_ref":"s",
                "endpoint":{{"scheme":"http","host":"{host}","port":1}},
                "discovery":{discovery}}}}}"#
        );
        let c = FilterConfig::from_json(doc.as_bytes()).unwrap();
        let u = c.upstream("acct").unwrap();
        DiscoveryKey::new(u, &c.credentials_key(u)).unwrap()
    };
    let base = key(
        r#"{"enabled":true,"cluster":"c","refresh_interval":"5s"}"#,
        "h",
    );
    assert_eq!(
        base,
        key(
            r#"{"enabled":true,"cluster":"c","refresh_interval":"9s"}"#,
            "h"
        )
    );
    assert_ne!(base, key(r#"{"enabled":true,"cluster":"c"}"#, "other"));
    assert_ne!(base, key(r#"{"enabled":true,"cluster":"d"}"#, "h"));
    assert_ne!(
        base,
        key(r#"{"enabled":true,"cluster":"c","aliases":true}"#, "h")
    );
    assert_ne!(
        base,
        key(r#"{"enabled":true,"cluster":"c","include":["x*"]}"#, "h")
    );
}

fn every(refresh: u64, aliases: u64) -> DiscoverySettings {
    DiscoverySettings {
        refresh_interval: Duration::from_secs(refresh),
        // Read only with aliases or versions on (not here: a refresh is two pages of functions).
        aliases_refresh_interval: Some(Duration::from_secs(aliases)),
        ..settings()
    }
}

/// The intervals the entry of `member` runs with.
fn entry_settings(w: &World, member: MemberId) -> DiscoverySettings {
    let key = &w.registry.members[&member].key;
    w.registry.entries[key].driver.settings().clone()
}

#[test]
fn a_survivors_intervals_apply_again_once_the_newer_config_is_destroyed() {
    let mut w = World::new();
    let (sa, sb) = (
        Arc::new(FakeScheduler::default()),
        Arc::new(FakeScheduler::default()),
    );
    let a = w.join_with(1, &sa, 0, &every(10, 100)).member;
    let b = w.join_with(2, &sb, 0, &every(1, 5)).member;
    w.registry.fire_due(w.at(0));
    assert_eq!(sb.take(), [0], "the newest config polls");
    w.refresh(b, 0);
    let waited = w.registry.due(b).unwrap() - w.at(0);
    assert!(waited <= Duration::from_millis(1100), "B's 1 s: {waited:?}");

    // B's listener is removed; A, still draining, polls with its own 10 s again.
    w.registry.leave(b, w.at(0));
    assert_eq!(entry_settings(&w, a), every(10, 100));
    w.registry.fire_due(w.at(1));
    assert_eq!(sa.take(), [SYNC_EVENT, 0]);
    w.refresh(a, 1);
    let waited = w.registry.due(a).unwrap() - w.at(1);
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(11),
        "A's 10 s ± 10 %: {waited:?}"
    );
}

#[test]
fn a_longer_wait_of_the_destroyed_config_is_cut_to_the_survivors_interval() {
    let mut w = World::new();
    let (sa, sb) = (
        Arc::new(FakeScheduler::default()),
        Arc::new(FakeScheduler::default()),
    );
    let a = w.join_with(1, &sa, 0, &every(10, 100)).member;
    let b = w.join_with(2, &sb, 0, &every(3600, 7200)).member;
    w.registry.fire_due(w.at(0));
    w.refresh(b, 0);
    assert!(w.registry.due(b).unwrap() - w.at(0) >= Duration::from_secs(3240));
    w.registry.leave(b, w.at(5));
    let waited = w.registry.due(a).unwrap() - w.at(5);
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(11),
        "{waited:?}"
    );
}
