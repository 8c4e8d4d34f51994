//! The event bus: every service publishes what happened; `GET /events` subscribers get the
//! recent past (from `since`) and then live events.

use crate::error::EngineError;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc};
use wharf_api::event::{Event, EventActor};
use wharf_api::filters::{FilterSet, Filters};
use wharf_backend::{EventStream, EventsOptions};

/// Past events kept for `since` (Docker keeps 256).
const HISTORY: usize = 1024;

pub struct EventBus {
    live: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            live: broadcast::channel(1024).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl EventBus {
    /// A container event; `attrs` get the image and name added, as Docker's do.
    pub fn container(
        &self,
        action: &str,
        id: &str,
        name: &str,
        image: &str,
        labels: &BTreeMap<String, String>,
        extra: &[(&str, String)],
    ) {
        let mut attributes = labels.clone();
        attributes.insert("image".into(), image.into());
        attributes.insert("name".into(), name.into());
        for (k, v) in extra {
            attributes.insert((*k).into(), v.clone());
        }
        self.publish(Event {
            status: Some(action.into()),
            id: Some(id.into()),
            from: Some(image.into()),
            kind: "container".into(),
            action: action.into(),
            actor: EventActor {
                id: id.into(),
                attributes,
            },
            ..Default::default()
        });
    }

    /// An image event; like dockerd's, its attributes are the image's labels (none once the
    /// image is deleted) and `name`.
    pub fn image(
        &self,
        action: &str,
        id: &str,
        name: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) {
        let mut attributes = labels.cloned().unwrap_or_default();
        attributes.insert("name".into(), name.into());
        self.publish(Event {
            status: Some(action.into()),
            id: Some(id.into()),
            kind: "image".into(),
            action: action.into(),
            actor: EventActor {
                id: id.into(),
                attributes,
            },
            ..Default::default()
        });
    }

    /// A volume event: dockerd's actor is the volume's name with its `driver`.
    pub fn volume(&self, action: &str, name: &str, driver: &str) {
        let mut attributes = BTreeMap::new();
        attributes.insert("driver".into(), driver.into());
        self.publish(Event {
            kind: "volume".into(),
            action: action.into(),
            actor: EventActor {
                id: name.into(),
                attributes,
            },
            ..Default::default()
        });
    }

    /// A volume's `mount` or `unmount` by a container: dockerd's actor, the volume's name,
    /// with the attributes it gives (driver, container, destination...).
    pub fn volume_with(&self, action: &str, name: &str, attributes: BTreeMap<String, String>) {
        self.publish(Event {
            kind: "volume".into(),
            action: action.into(),
            actor: EventActor {
                id: name.into(),
                attributes,
            },
            ..Default::default()
        });
    }

    /// `volume prune`, with what it freed, as dockerd's (an actor without an id).
    pub fn volume_prune(&self, reclaimed: u64) {
        let mut attributes = BTreeMap::new();
        attributes.insert("reclaimed".into(), reclaimed.to_string());
        self.publish(Event {
            kind: "volume".into(),
            action: "prune".into(),
            actor: EventActor {
                id: String::new(),
                attributes,
            },
            ..Default::default()
        });
    }

    fn publish(&self, mut e: Event) {
        e.scope = "local".into();
        // Stamped, kept and sent under the history lock, which `subscribe` also holds: each
        // event is either in a subscriber's copy of the past or reaches it live, exactly once,
        // and the history stays in time order when services publish at once.
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        e.time_nano = now_nanos();
        e.time = e.time_nano / 1_000_000_000;
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(e.clone());
        // No subscriber is fine; sending never blocks (a slow subscriber lags instead).
        let _ = self.live.send(e);
    }

    /// Live `GET /events` subscribers (`/info`'s `NEventsListener`).
    pub fn listeners(&self) -> usize {
        self.live.receiver_count()
    }

    pub fn subscribe(&self, opts: EventsOptions) -> Result<EventStream, EngineError> {
        opts.filters.check(&FILTERS)?;
        let to_nanos = |s: f64| (s * 1e9) as i64;
        let since = opts.since.map(to_nanos);
        let until = opts.until.map(to_nanos);
        // Subscribing and copying the past under the lock `publish` holds: nothing falls
        // between the two, and nothing is in both.
        let (mut rx, past) = {
            let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            let past: Vec<Event> = match since {
                Some(s) => h
                    .iter()
                    .filter(|e| e.time_nano >= s && until.is_none_or(|u| e.time_nano <= u))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            (self.live.subscribe(), past)
        };
        let filters = opts.filters;
        let (tx, out) = mpsc::channel::<Event>(64);
        tokio::spawn(async move {
            for e in past {
                if matches(&filters, &e) && tx.send(e).await.is_err() {
                    return;
                }
            }
            let deadline = until.map(|u| {
                let wait = u - now_nanos();
                tokio::time::Instant::now() + Duration::from_nanos(wait.max(0) as u64)
            });
            loop {
                let next = async {
                    match deadline {
                        Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                        None => Some(rx.recv().await),
                    }
                };
                let got = tokio::select! {
                    _ = tx.closed() => return,
                    g = next => g,
                };
                match got {
                    None => return, // until reached
                    Some(Ok(e)) => {
                        if until.is_some_and(|u| e.time_nano > u) {
                            continue;
                        }
                        if matches(&filters, &e) && tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                    Some(Err(broadcast::error::RecvError::Closed)) => return,
                }
            }
        });
        Ok(Box::pin(futures_util::stream::unfold(
            out,
            |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
        )))
    }
}

/// `GET /events` filters: all of Docker's (moby v25 `daemon/events/filter.go`). dockerd does
/// not validate names here and ignores unknown ones; Wharf refuses them rather than stream
/// events the client did not ask for.
pub const FILTERS: FilterSet = FilterSet {
    applied: &[
        "config",
        "container",
        "daemon",
        "event",
        "image",
        "label",
        "network",
        "node",
        "plugin",
        "scope",
        "secret",
        "service",
        "type",
        "volume",
    ],
    not_yet: &[],
};

/// moby's `Filter.Include`.
fn matches(f: &Filters, e: &Event) -> bool {
    // `ExactMatch`/`FuzzyMatch`: no values match everything.
    let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
        let v = f.get(key);
        v.is_empty() || v.iter().any(|x| pred(x))
    };
    let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or("");
    // `fuzzyMatchName`: the actor's ID or name starts with the value, whatever the event's
    // type (dockerd's rule: `container=x` also matches an image event of an actor named x).
    let by_name = |key: &str| {
        any(key, &|v| {
            e.actor.id.starts_with(v) || attr("name").starts_with(v)
        })
    };
    // `matchImage`: image events carry the image in `name`, others in `image`.
    let image_name = attr(if e.kind == "image" { "name" } else { "image" });
    any("type", &|v| v == e.kind)
        && any("event", &|v| {
            // dockerd: `health_status`, `exec_create` and `exec_start` also match their
            // `name: detail` forms.
            v == e.action
                || (matches!(v, "health_status" | "exec_create" | "exec_start")
                    && e.action.starts_with(v))
        })
        && any("scope", &|v| v == e.scope)
        && [
            "daemon",
            "container",
            "plugin",
            "volume",
            "network",
            "node",
            "service",
            "secret",
            "config",
        ]
        .into_iter()
        .all(by_name)
        && any("image", &|v| {
            v == e.actor.id
                || v == image_name
                || v == strip_tag(&e.actor.id)
                || v == strip_tag(image_name)
        })
        && f.match_labels(&e.actor.attributes)
}

/// `reference.FamiliarName` of a parsed reference: no tag, no digest, no `docker.io/library/`.
fn strip_tag(image: &str) -> &str {
    let no_digest = image.split_once('@').map_or(image, |(n, _)| n);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let no_tag = match no_digest[last_slash..].rfind(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    };
    no_tag
        .strip_prefix("docker.io/library/")
        .or_else(|| no_tag.strip_prefix("docker.io/"))
        .unwrap_or(no_tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn replays_since_and_filters_live() {
        let bus = EventBus::default();
        let labels = BTreeMap::new();
        bus.container("create", "abc", "web", "busybox", &labels, &[]);
        let mut s = bus
            .subscribe(EventsOptions {
                since: Some(0.001),
                until: None,
                filters: Filters::parse(r#"{"event":["create","die"]}"#).unwrap(),
            })
            .unwrap();
        bus.container("start", "abc", "web", "busybox", &labels, &[]);
        bus.container(
            "die",
            "abc",
            "web",
            "busybox",
            &labels,
            &[("exitCode", "0".into())],
        );
        assert_eq!(s.next().await.unwrap().action, "create");
        let die = s.next().await.unwrap();
        assert_eq!(die.action, "die");
        assert_eq!(die.actor.attributes["exitCode"], "0");
        assert_eq!(die.actor.attributes["name"], "web");
    }

    /// Services publish from many threads while a client subscribes with `since`: it gets
    /// every event exactly once, whether from the past or live.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn since_and_live_together_give_each_event_once_under_concurrent_publishing() {
        const THREADS: usize = 4;
        const EACH: usize = 200; // all of them fit the history and the live channel
        let bus = std::sync::Arc::new(EventBus::default());
        let go = std::sync::Arc::new(std::sync::Barrier::new(THREADS + 1));
        let publishers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (bus, go) = (bus.clone(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    for i in 0..EACH {
                        bus.image("tag", &format!("sha256:{t}-{i}"), "x:latest", None);
                    }
                })
            })
            .collect();
        go.wait();
        // Mid-stream: some events are past, the rest arrive live.
        while bus.history.lock().unwrap().len() < THREADS * EACH / 3 {
            std::thread::yield_now();
        }
        let s = bus
            .subscribe(EventsOptions {
                since: Some(0.001),
                until: None,
                filters: Filters::default(),
            })
            .unwrap();
        for p in publishers {
            p.join().unwrap();
        }
        let all = s
            .take(THREADS * EACH)
            .map(|e| e.actor.id)
            .collect::<Vec<_>>();
        let got = tokio::time::timeout(Duration::from_secs(30), all)
            .await
            .expect("events were lost: fewer arrived than were published");
        let mut seen = std::collections::HashSet::new();
        for id in &got {
            assert!(seen.insert(id.clone()), "{id} delivered twice");
        }
        assert_eq!(seen.len(), THREADS * EACH);
        let times: Vec<i64> = bus
            .history
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.time_nano)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "history out of time order"
        );
    }

    #[tokio::test]
    async fn until_in_the_past_ends_the_stream() {
        let bus = EventBus::default();
        bus.image("tag", "sha256:1", "busybox:latest", None);
        let s = bus
            .subscribe(EventsOptions {
                since: Some(0.001),
                until: Some(1.0),
                filters: Filters::default(),
            })
            .unwrap();
        assert_eq!(s.collect::<Vec<_>>().await.len(), 0);
    }

    fn event(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: wharf_api::event::EventActor {
                id: id.into(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            scope: "local".into(),
            ..Event::default()
        }
    }

    #[test]
    fn filters_as_moby_applies_them() {
        let f = |j: &str| Filters::parse(j).unwrap();
        let start = event(
            "container",
            "exec_start: sh -c true",
            "abc123",
            &[("name", "web"), ("image", "docker.io/library/busybox:1.36")],
        );
        let tagged = event("image", "tag", "sha256:1", &[("name", "busybox:latest")]);
        for (filters, want) in [
            (r#"{"container":["web"]}"#, true),
            (r#"{"container":["ab"]}"#, true),
            (r#"{"container":["db"]}"#, false),
            (r#"{"event":["exec_start"]}"#, true),
            (r#"{"event":["exec_create"]}"#, false),
            (r#"{"image":["busybox"]}"#, true),
            (r#"{"image":["busybox:1.36"]}"#, false),
            (r#"{"scope":["swarm"]}"#, false),
            (r#"{"daemon":["x"]}"#, false),
            (r#"{"network":["w"]}"#, true),
            (r#"{"type":["container"],"volume":["web"]}"#, true),
        ] {
            assert_eq!(matches(&f(filters), &start), want, "{filters}");
        }
        assert!(matches(&f(r#"{"image":["busybox"]}"#), &tagged));
        assert!(f(r#"{"nope":["x"]}"#).check(&FILTERS).is_err());
        assert_eq!(
            strip_tag("localhost:5000/a/b:v1@sha256:00"),
            "localhost:5000/a/b"
        );
        assert_eq!(strip_tag("localhost:5000/a"), "localhost:5000/a");
    }
}
