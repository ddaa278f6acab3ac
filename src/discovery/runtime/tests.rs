use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::credentials::ConfigCredentials;
use crate::discovery::registry::Jitter;
use crate::discovery::registry::tests::FakeScheduler;
use crate::discovery::table::Lookup;

/// A config's Envoy side: records callouts, stats and log lines; can panic on a callout.
#[derive(Default)]
struct FakeIo {
    callouts: Vec<String>,
    next_id: u64,
    counters: Vec<(DiscoveryCounter, Vec<String>)>,
    gauges: HashMap<(DiscoveryGauge, Vec<String>), u64>,
    logs: Vec<(LogLevel, String)>,
    /// Callouts that panic before this many have been made.
    panics_left: usize,
}

impl DiscoveryIo for FakeIo {
    fn secret(&self, _secret: usize) -> &[u8] {
        b"access_key: AKIDEXAMPLE\nsecret_key: s\n"
    }

    fn callout(&mut self, cluster: &str, headers: &[(String, String)]) -> Result<u64, String> {
        assert_eq!(cluster, "lambda");
        if self.panics_left > 0 {
            self.panics_left -= 1;
            panic!("a bug in the send path");
        }
        let path = headers
            .iter()
            .find(|(k, _)| k == ":path")
            .unwrap()
            .1
            .clone();
        self.callouts.push(path);
        self.next_id += 1;
        Ok(self.next_id)
    }

    fn count(&mut self, counter: DiscoveryCounter, labels: &[&str]) {
        self.counters
            .push((counter, labels.iter().map(|l| l.to_string()).collect()));
    }

    fn set_gauge(&mut self, gauge: DiscoveryGauge, labels: &[&str], value: u64) {
        let labels = labels.iter().map(|l| l.to_string()).collect();
        self.gauges.insert((gauge, labels), value);
    }

    fn log(&mut self, level: LogLevel, line: &str) {
        self.logs.push((level, line.to_owned()));
    }
}

impl FakeIo {
    fn gauge(&self, gauge: DiscoveryGauge, labels: &[&str]) -> Option<u64> {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        self.gauges.get(&(gauge, labels)).copied()
    }

    fn counted(&self, counter: DiscoveryCounter) -> usize {
        self.counters.iter().filter(|(c, _)| *c == counter).count()
    }
}

const LISTING: &[u8] =
    br#"{"Functions":[{"FunctionName":"orders"},{"FunctionName":"billing"}],"NextMarker":null}"#;

/// One filter config: its parsed document, tables, credential caches and Envoy side.
struct Config {
    doc: FilterConfig,
    tables: HashMap<String, Arc<FunctionTable>>,
    credentials: ConfigCredentials,
    scheduler: Arc<FakeScheduler>,
    io: FakeIo,
    discovery: Option<ConfigDiscovery>,
}

impl Config {
    fn load(global: &Global, number: u64) -> Self {
        let doc = FilterConfig::from_json(
            br#"{"name":"acct","spec":{"region":"us-east-1","secret_ref":"creds",
                 "endpoint":{"scheme":"http","host":"127.0.0.1","port":1},
                 "discovery":{"enabled":true,"cluster":"lambda","refresh_interval":"60s"}}}"#,
        )
        .unwrap();
        let mut c = Self {
            tables: HashMap::new(),
            credentials: ConfigCredentials::new(&doc),
            doc,
            scheduler: Arc::new(FakeScheduler::default()),
            io: FakeIo::default(),
            discovery: None,
        };
        c.discovery = ConfigDiscovery::join(
            global,
            &mut c.io,
            &c.doc,
            &mut c.tables,
            Arc::clone(&c.scheduler) as Arc<dyn Wake>,
            number,
        );
        c
    }

    fn d(&self) -> &ConfigDiscovery {
        self.discovery.as_ref().unwrap()
    }

    fn table(&self) -> &Arc<FunctionTable> {
        &self.tables["acct"]
    }

    /// Runs the scheduler events Envoy would have delivered.
    fn run_events(&mut self, global: &Global) -> usize {
        let events = self.scheduler.take();
        for &event in &events {
            let d = self.discovery.as_ref().unwrap();
            let keys = Keys {
                config: &self.doc,
                credentials: &self.credentials,
            };
            d.on_event(global, &mut self.io, &keys, event);
        }
        events.len()
    }

    /// Answers the last callout with `body`.
    fn answer(&mut self, global: &Global, body: &[u8]) {
        let id = self.io.next_id;
        let d = self.discovery.as_ref().unwrap();
        let keys = Keys {
            config: &self.doc,
            credentials: &self.credentials,
        };
        d.on_callout_done(
            global,
            &mut self.io,
            &keys,
            id,
            CalloutReply::Http { status: 200, body },
        );
    }
}

fn fire(global: &Global, after: Duration) {
    global.with(|r| r.fire_due(Instant::now() + after));
}

#[test]
fn a_second_config_reads_the_first_ones_list_and_takes_over_polling() {
    let global = Global::new(Jitter::new(7));
    let mut one = Config::load(&global, 1);
    assert_eq!(one.table().lookup("orders"), Lookup::NotReady);
    assert!(
        one.io.logs[0]
            .1
            .ends_with("filter config #1 polls (first listing pending)")
    );
    fire(&global, Duration::ZERO);
    assert_eq!(one.run_events(&global), 1);
    assert_eq!(one.io.callouts, ["/2015-03-31/functions/?MaxItems=50"]);
    one.answer(&global, LISTING);
    assert_eq!(one.table().lookup("orders"), Lookup::Found);
    assert_eq!(one.io.counted(DiscoveryCounter::RefreshOk), 1);
    assert_eq!(one.io.gauge(DiscoveryGauge::Functions, &["acct"]), Some(2));
    assert_eq!(
        one.io
            .gauge(DiscoveryGauge::FunctionPresent, &["acct", "billing"]),
        Some(1)
    );

    // The LDS update: config 2 serves the list from its first request.
    let mut two = Config::load(&global, 2);
    assert!(Arc::ptr_eq(one.table(), two.table()));
    assert_eq!(two.table().lookup("billing"), Lookup::Found);
    assert!(two.io.logs[0].1.ends_with(
        "filter config #2 polls now instead of #1, starting with the last good list (2 names)"
    ));
    // Its own references to the gauges, and who polls.
    assert_eq!(two.io.gauge(DiscoveryGauge::Functions, &["acct"]), Some(2));
    assert_eq!(
        two.io
            .gauge(DiscoveryGauge::FunctionPresent, &["acct", "orders"]),
        Some(1)
    );
    assert_eq!(
        two.io.gauge(DiscoveryGauge::PollerConfig, &["acct"]),
        Some(2)
    );
    assert_eq!(two.io.gauge(DiscoveryGauge::Configs, &["acct"]), Some(2));

    // The next refresh goes through config 2 only.
    fire(&global, Duration::from_secs(67));
    assert_eq!((one.run_events(&global), two.run_events(&global)), (0, 1));
    assert_eq!(one.io.callouts.len(), 1);
    assert_eq!(two.io.callouts.len(), 1);

    // Config 2 is destroyed mid-refresh: config 1 restarts the refresh at once.
    let lines = two.d().leave(&global);
    assert_eq!(
        lines,
        [
            "envoy-lambda: discovery for upstream 'acct': filter config #2 is gone; #1 polls (1 \
          config(s) share the list)"
        ]
    );
    assert_eq!(one.run_events(&global), 1, "the SYNC event");
    assert_eq!(
        one.io.gauge(DiscoveryGauge::PollerConfig, &["acct"]),
        Some(1)
    );
    assert_eq!(one.io.gauge(DiscoveryGauge::Configs, &["acct"]), Some(1));
    fire(&global, Duration::ZERO);
    assert_eq!(one.run_events(&global), 1);
    assert_eq!(one.io.callouts.len(), 2);
    one.answer(
        &global,
        br#"{"Functions":[{"FunctionName":"orders"}],"NextMarker":null}"#,
    );
    assert_eq!(one.table().lookup("billing"), Lookup::NotFound);
    assert_eq!(
        one.io
            .gauge(DiscoveryGauge::FunctionPresent, &["acct", "billing"]),
        Some(0)
    );
}

#[test]
fn a_panicking_step_is_logged_counted_and_retried_after_a_back_off() {
    let global = Global::new(Jitter::new(7));
    let mut one = Config::load(&global, 1);
    one.io.panics_left = 2;
    let mut delays = Vec::new();
    for _ in 0..2 {
        fire(&global, Duration::from_secs(300));
        assert_eq!(one.run_events(&global), 1);
        let member = one.d().slots.lock().unwrap()[0].member;
        delays.push(global.with(|r| r.due(member)).unwrap() - Instant::now());
    }
    assert_eq!(one.io.counted(DiscoveryCounter::Panics), 2);
    assert_eq!(one.io.counters[0].1, ["acct"]);
    let errors: Vec<&String> = one
        .io
        .logs
        .iter()
        .filter(|(l, _)| *l == LogLevel::Error)
        .map(|(_, line)| line)
        .collect();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].starts_with(
            "envoy-lambda: panic in discovery for upstream 'acct': a bug in the send path; \
             the refresh restarts in "
        ),
        "{}",
        errors[0]
    );
    assert!(delays[0] <= Duration::from_secs(1), "{delays:?}");
    assert!(delays[1] > delays[0], "{delays:?}");
    // Third time lucky: discovery was not ended by the panics.
    fire(&global, Duration::from_secs(300));
    assert_eq!(one.run_events(&global), 1);
    one.answer(&global, LISTING);
    assert_eq!(one.table().lookup("orders"), Lookup::Found);
}

/// Panics on its first wake (a bug in the timer's path), then records.
struct FlakyScheduler {
    calls: AtomicUsize,
    woken: Mutex<Vec<u64>>,
}

impl Wake for FlakyScheduler {
    fn wake(&self, event: u64) {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("timer bug");
        }
        self.woken.lock().unwrap().push(event);
    }
}

#[test]
fn the_timer_thread_survives_a_panic_and_the_main_thread_counts_it() {
    // 'static like the process's own; leaked on purpose (one small struct per test run).
    let global: &'static Global = Box::leak(Box::new(Global::new(Jitter::new(3))));
    let flaky = Arc::new(FlakyScheduler {
        calls: AtomicUsize::new(0),
        woken: Mutex::new(Vec::new()),
    });
    let mut io = FakeIo::default();
    let mut tables = HashMap::new();
    let doc = Config::load(&Global::new(Jitter::new(1)), 0).doc;
    let d = ConfigDiscovery::join(
        global,
        &mut io,
        &doc,
        &mut tables,
        Arc::clone(&flaky) as Arc<dyn Wake>,
        1,
    )
    .unwrap();
    static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    global.start_timer(|line| LOGGED.lock().unwrap().push(line.to_owned()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while flaky.woken.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(*flaky.woken.lock().unwrap(), [0], "woken after the restart");
    let logged = LOGGED.lock().unwrap().clone();
    assert_eq!(
        logged,
        ["envoy-lambda: panic in discovery timer: timer bug; restarting it in 1s"]
    );
    // The next main-thread step counts the timer's panic as a stat.
    let credentials = ConfigCredentials::new(&doc);
    let keys = Keys {
        config: &doc,
        credentials: &credentials,
    };
    d.on_event(global, &mut io, &keys, SYNC_EVENT);
    assert_eq!(io.counted(DiscoveryCounter::TimerPanics), 1);
    assert_eq!(global.take_timer_panics(), 0);
    d.leave(global);
    // The last discovery is gone: the thread stops (Envoy may unload the module next) and
    // starts again with the next one.
    assert!(global.stop_timer_when_idle());
    assert!(!global.stop_timer_when_idle(), "already stopped");
    global.start_timer(|line| LOGGED.lock().unwrap().push(line.to_owned()));
    assert!(global.stop_timer_when_idle());
}
