//! Debounce: turns the observation of every tick into a [`StableChangeSet`] only when two (or
//! `stable_ticks`) consecutive ticks saw the same fingerprints for the whole set and that state differs from the
//! last one emitted. Pure; never reads a file or a clock.

use std::time::Instant;

use crate::source::Sources;
use crate::watch::classify::{classify_set, FileChange, FileChangeKind};
use crate::watch::fingerprint::Observation;

/// A change of the watched set that held still for two (or `stable_ticks`) consecutive ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StableChangeSet {
    /// What changed since the last emitted state, sorted by name; touched files are only logged.
    pub changes: Vec<FileChange>,
    /// The whole set as read at the emitting tick: the very bytes whose fingerprints were stable.
    pub sources: Sources,
    /// When the first tick that differed from the last emitted state was seen.
    pub first_seen: Instant,
    /// When the set was emitted (the last of the identical ticks).
    pub emitted_at: Instant,
}

/// The debounce state machine.
#[derive(Debug, Clone)]
pub struct Debouncer {
    /// The last emitted (or baseline) state; `None` before the first emission without a baseline.
    emitted: Option<Observation>,
    /// The previous tick's observation, if it was usable.
    previous: Option<Observation>,
    /// How many consecutive ticks, this one included, saw `previous`'s fingerprints.
    same_ticks: u32,
    /// How many identical consecutive ticks make a state stable.
    stable_ticks: u32,
    /// When the first tick differing from `emitted` was seen.
    first_seen: Option<Instant>,
    /// A change's content at the first tick that saw it after a quiet stretch, until taken.
    settling: Option<Sources>,
}

/// Identical consecutive ticks that make a state stable, by default.
pub const DEFAULT_STABLE_TICKS: u32 = 2;
/// The largest accepted `stable_ticks` (more would hold a change back for no benefit).
pub const MAX_STABLE_TICKS: u32 = 20;

impl Default for Debouncer {
    fn default() -> Self {
        Self {
            emitted: None,
            previous: None,
            same_ticks: 0,
            stable_ticks: DEFAULT_STABLE_TICKS,
            first_seen: None,
            settling: None,
        }
    }
}

impl Debouncer {
    /// A debouncer with no baseline: the first stable state is emitted whole (every file created,
    /// possibly none).
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `n` identical consecutive ticks (clamped to 2..=[`MAX_STABLE_TICKS`]) before a
    /// state is emitted, for writers that pause mid-write for longer than one tick.
    #[must_use]
    pub fn with_stable_ticks(mut self, n: u32) -> Self {
        self.stable_ticks = n.clamp(DEFAULT_STABLE_TICKS, MAX_STABLE_TICKS);
        self
    }

    /// A debouncer whose last emitted state is `baseline` (what the service started on), so that
    /// state is not emitted again. A baseline from [`Observation::from_sources`] has no mtimes: the
    /// first tick that reads the same content adopts the real mtimes silently.
    pub fn with_baseline(baseline: Observation) -> Self {
        Self { emitted: Some(baseline), ..Self::default() }
    }

    /// The last emitted (or baseline) state.
    #[cfg_attr(not(any(test, feature = "testing")), allow(dead_code))] // tests and `hotconf::testing` only
    pub fn emitted(&self) -> Option<&Observation> {
        self.emitted.as_ref()
    }

    /// Whether a change has been seen that is not yet emitted.
    #[cfg(test)]
    pub fn is_pending(&self) -> bool {
        self.first_seen.is_some()
    }

    /// Feeds one tick's observation of the whole set; returns a change set when this tick and the
    /// previous one saw identical fingerprints that differ in content from the last emitted state.
    pub fn observe(&mut self, observation: Observation, now: Instant) -> Option<StableChangeSet> {
        let differs = self.emitted.as_ref().is_none_or(|e| !e.same_fingerprints(&observation));
        if !differs {
            self.first_seen = None;
            self.previous = Some(observation);
            self.same_ticks = 1;
            return None;
        }
        if self.first_seen.is_none() && self.emitted.as_ref().is_some_and(|e| !e.same_contents(&observation)) {
            // The first sight of a change of content after a quiet stretch: offered to be judged
            // ahead (never applied) while it settles. Only the first: a burst of edits is not
            // judged tick by tick, and a touch (an mtime alone) has nothing to judge.
            self.settling = Some(observation.to_sources());
        }
        let first_seen = *self.first_seen.get_or_insert(now);
        let same = self.previous.as_ref().is_some_and(|p| p.same_fingerprints(&observation));
        self.same_ticks = if same { self.same_ticks.saturating_add(1) } else { 1 };
        if self.same_ticks < self.stable_ticks {
            self.previous = Some(observation);
            return None;
        }

        let empty = Observation::new();
        let changes = classify_set(self.emitted.as_ref().unwrap_or(&empty), &observation);
        let (touched, changes): (Vec<FileChange>, Vec<FileChange>) =
            changes.into_iter().partition(|c| c.kind == FileChangeKind::Touched);
        for change in &touched {
            tracing::info!(event = "change.detected", file = %change.name, change = change.kind.as_str(), "only the modification time changed");
        }
        self.first_seen = None;
        if changes.is_empty() && self.emitted.is_some() {
            // Only mtimes moved (or a baseline's unknown mtimes became known): adopt, emit nothing.
            self.emitted = Some(observation.clone());
            self.previous = Some(observation);
            return None;
        }
        for change in &changes {
            match &change.kind {
                FileChangeKind::Renamed { from } => tracing::info!(
                    event = "change.detected",
                    file = %change.name,
                    change = change.kind.as_str(),
                    from = %from,
                    "a config file changed"
                ),
                kind => {
                    tracing::info!(event = "change.detected", file = %change.name, change = kind.as_str(), "a config file changed")
                }
            }
        }
        let sources = observation.to_sources();
        self.emitted = Some(observation.clone());
        self.previous = Some(observation);
        Some(StableChangeSet { changes, sources, first_seen, emitted_at: now })
    }

    /// Forgets the previous tick, so that `stable_ticks` further identical ticks are needed before an emission.
    /// Called for a tick that could not observe the set (a fault holds emission back).
    /// The content of a change seen for the first time after a quiet stretch, once, at the tick
    /// that saw it (see [`WatchEvent::Settling`](crate::watch::WatchEvent::Settling)).
    pub fn take_settling(&mut self) -> Option<Sources> {
        self.settling.take()
    }

    pub fn interrupt(&mut self, now: Instant) {
        self.previous = None;
        self.same_ticks = 0;
        self.first_seen.get_or_insert(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::clock::{Clock, FakeClock};
    use crate::watch::fingerprint::FileObservation;
    use proptest::prelude::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    const TICK: Duration = Duration::from_millis(250);

    /// One file: (name, content, mtime seconds).
    type Spec<'a> = &'a [(&'a str, &'a str, u64)];

    fn obs(files: Spec<'_>) -> Observation {
        let mtime = |s: u64| -> Option<SystemTime> { Some(UNIX_EPOCH + Duration::from_secs(s)) };
        files.iter().map(|(n, c, t)| (n.to_string(), FileObservation::read(*c, mtime(*t)))).collect()
    }

    /// Feeds one observation a tick and returns, per tick, the emitted changes as strings (or "-").
    fn check(baseline: Option<Spec<'_>>, ticks: &[Spec<'_>], expected: &[&str]) {
        let clock = FakeClock::new();
        let mut debouncer = baseline.map_or_else(Debouncer::new, |b| Debouncer::with_baseline(obs(b)));
        let mut got = Vec::new();
        for tick in ticks {
            let out = debouncer.observe(obs(tick), clock.now());
            got.push(match out {
                None => "-".to_owned(),
                Some(set) => {
                    assert_eq!(set.sources, obs(tick).to_sources(), "emitted sources are the tick's bytes");
                    let list: Vec<String> = set.changes.iter().map(ToString::to_string).collect();
                    format!("[{}]", list.join(", "))
                }
            });
            clock.advance(TICK);
        }
        assert_eq!(got, expected);
    }

    const A1: (&str, &str, u64) = ("a.yaml", "a: 1", 1);
    const A2: (&str, &str, u64) = ("a.yaml", "a: 2", 2);
    const B1: (&str, &str, u64) = ("b.yaml", "b: 1", 1);

    /// One tick: what is offered to be judged ahead, and whether a stable set is emitted.
    fn step(d: &mut Debouncer, tick: Spec<'_>, k: u32) -> (Option<Sources>, bool) {
        let stable = d.observe(obs(tick), Instant::now() + TICK * k);
        (d.take_settling(), stable.is_some())
    }

    #[test]
    fn a_change_is_offered_to_be_judged_once_at_its_first_sighting_after_a_quiet_stretch() {
        let mut d = Debouncer::with_baseline(obs(&[A1]));
        assert_eq!(step(&mut d, &[A1], 0), (None, false));
        // The first sighting: offered with that tick's bytes, not emitted.
        assert_eq!(step(&mut d, &[A2], 1), (Some(obs(&[A2]).to_sources()), false));
        // Stable: emitted, not offered again.
        assert_eq!(step(&mut d, &[A2], 2), (None, true));
        // A burst of edits: only its first tick is offered; the stable state is emitted as always.
        assert_eq!(step(&mut d, &[A1], 3), (Some(obs(&[A1]).to_sources()), false));
        assert_eq!(step(&mut d, &[A1, B1], 4), (None, false));
        assert_eq!(step(&mut d, &[A2, B1], 5), (None, false));
        assert_eq!(step(&mut d, &[A2, B1], 6), (None, true));
        // After a fault the next sighting is not after a quiet stretch.
        d.interrupt(Instant::now());
        assert_eq!(step(&mut d, &[A1], 7), (None, false));
        // Nothing is offered before a first state was emitted (no baseline).
        assert_eq!(step(&mut Debouncer::new(), &[A1], 0), (None, false));
    }

    #[test]
    fn no_baseline_emits_the_first_stable_state() {
        check(None, &[&[A1], &[A1], &[A1]], &["-", "[a.yaml created]", "-"]);
        check(None, &[&[], &[]], &["-", "[]"]);
    }

    #[test]
    fn baseline_is_not_emitted_again() {
        check(Some(&[A1]), &[&[A1], &[A1], &[A1]], &["-", "-", "-"]);
        // A baseline without mtimes is adopted silently.
        let mut d = Debouncer::with_baseline(Observation::from_sources(&obs(&[A1]).to_sources()));
        let t = Instant::now();
        assert!(d.observe(obs(&[A1]), t).is_none());
        assert!(d.observe(obs(&[A1]), t + TICK).is_none());
        assert!(d.emitted().unwrap().same_fingerprints(&obs(&[A1])));
    }

    #[test]
    fn scenarios() {
        // A change is emitted on the second identical tick, once.
        check(Some(&[A1]), &[&[A2], &[A2], &[A2]], &["-", "[a.yaml modified]", "-"]);
        // A half-written state seen once is never emitted.
        check(Some(&[A1]), &[&[("a.yaml", "", 2)], &[A2], &[A2]], &["-", "-", "[a.yaml modified]"]);
        // Missing for one tick (vim's rename-save) then back with new content: one modification.
        check(Some(&[A1]), &[&[], &[A2], &[A2]], &["-", "-", "[a.yaml modified]"]);
        // Changed and changed back before being stable: nothing.
        check(Some(&[A1]), &[&[A2], &[A1], &[A1]], &["-", "-", "-"]);
        // Touched only: logged, never emitted.
        check(Some(&[A1]), &[&[("a.yaml", "a: 1", 9)], &[("a.yaml", "a: 1", 9)]], &["-", "-"]);
        // Two files in one window: one set.
        check(Some(&[A1]), &[&[A2, B1], &[A2, B1]], &["-", "[a.yaml modified, b.yaml created]"]);
        // Deleted then restored with the same content before stable: nothing.
        check(Some(&[A1, B1]), &[&[A1], &[A1, B1], &[A1, B1]], &["-", "-", "-"]);
        // Deleted, stable, then restored: two sets.
        check(
            Some(&[A1, B1]),
            &[&[A1], &[A1], &[A1, B1], &[A1, B1]],
            &["-", "[b.yaml deleted]", "-", "[b.yaml created]"],
        );
        // Same size, mtime put back: the content hash sees it.
        check(Some(&[A1]), &[&[("a.yaml", "a: 3", 1)], &[("a.yaml", "a: 3", 1)]], &["-", "[a.yaml modified]"]);
        // Renamed.
        check(
            Some(&[A1]),
            &[&[("z.yaml", "a: 1", 1)], &[("z.yaml", "a: 1", 1)]],
            &["-", "[z.yaml renamed from a.yaml]"],
        );
    }

    #[test]
    fn burst_of_five_edits_fifty_ms_apart_gives_one_set() {
        let clock = FakeClock::new();
        let mut debouncer = Debouncer::with_baseline(obs(&[A1]));
        let mut file = obs(&[A1]);
        let mut emitted = Vec::new();
        // 2 s of 50 ms steps; a tick every 250 ms; edits at 0, 50, …, 200 ms after t = 100 ms.
        for step in 0..40u64 {
            let ms = step * 50;
            if (100..=300).contains(&ms) {
                file = obs(&[("a.yaml", ["e0", "e1", "e2", "e3", "e4"][((ms - 100) / 50) as usize], ms)]);
            }
            if ms % 250 == 0 {
                emitted.extend(debouncer.observe(file.clone(), clock.now()));
            }
            clock.advance(Duration::from_millis(50));
        }
        assert_eq!(emitted.len(), 1);
        assert_eq!(emitted[0].sources.get("a.yaml").unwrap().bytes(), Some(&b"e4"[..]));
        // First seen mid-burst (e3 at 250 ms), stable at 500 and 750 ms.
        assert_eq!(emitted[0].emitted_at - emitted[0].first_seen, 2 * TICK);
    }

    #[test]
    fn interrupted_tick_needs_two_more() {
        let t = Instant::now();
        let mut d = Debouncer::with_baseline(obs(&[A1]));
        assert!(d.observe(obs(&[A2]), t).is_none());
        d.interrupt(t + TICK);
        assert!(d.observe(obs(&[A2]), t + 2 * TICK).is_none());
        let set = d.observe(obs(&[A2]), t + 3 * TICK).unwrap();
        assert_eq!(set.first_seen, t);
    }

    /// One generated edit: (file index, content index, mtime).
    fn edit() -> impl Strategy<Value = (usize, Option<usize>, u64)> {
        (0..3usize, proptest::option::weighted(0.8, 0..3usize), 0..4u64)
    }

    fn apply(state: &mut Observation, (file, content, mtime): (usize, Option<usize>, u64)) {
        let name = ["a.yaml", "b.yaml", "c.yaml"][file];
        match content {
            Some(c) => state.insert(
                name,
                FileObservation::read(["x: 1", "x: 2", "y: 10"][c], Some(UNIX_EPOCH + Duration::from_secs(mtime))),
            ),
            None => {
                *state = state.files().iter().filter(|(n, _)| *n != name).map(|(n, f)| (n.clone(), f.clone())).collect()
            }
        }
    }

    proptest! {
        /// Any sequence of edits (several per tick, some ticks with none) ends, once quiet for two
        /// ticks, in at most one emission, after which the emitted state is the final state.
        #[test]
        fn quiet_ends_in_the_final_state(
            ticks in proptest::collection::vec(proptest::collection::vec(edit(), 0..3), 0..12),
            with_baseline in any::<bool>(),
        ) {
            let clock = FakeClock::new();
            let mut state = Observation::new();
            let mut debouncer = if with_baseline { Debouncer::with_baseline(state.clone()) } else { Debouncer::new() };
            for edits in ticks {
                for e in edits {
                    apply(&mut state, e);
                }
                if let Some(set) = debouncer.observe(state.clone(), clock.now()) {
                    prop_assert_eq!(set.sources, state.to_sources());
                }
                clock.advance(TICK);
            }
            let before = debouncer.emitted().cloned();
            let mut quiet = Vec::new();
            for _ in 0..3 {
                quiet.extend(debouncer.observe(state.clone(), clock.now()));
                clock.advance(TICK);
            }
            prop_assert!(quiet.len() <= 1);
            prop_assert!(debouncer.emitted().unwrap().same_fingerprints(&state));
            let content_changed = before.as_ref().is_none_or(|b| {
                classify_set(b, &state).iter().any(|c| c.kind != FileChangeKind::Touched)
            });
            let emitted_now = before.is_none() || content_changed;
            // Emitted during the quiet ticks exactly when the final content differs from the last emission.
            prop_assert_eq!(quiet.len(), usize::from(emitted_now));
            if let Some(set) = quiet.first() {
                prop_assert_eq!(&set.sources, &state.to_sources());
            }
        }
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn a_change_is_emitted_on_its_second_identical_tick_once() {
        use crate::watch::debounce::Debouncer;
        use crate::watch::fingerprint::{FileObservation, Observation};
        use std::time::{Duration, Instant};
        let mut debouncer = Debouncer::new();
        let t = Instant::now();
        let set: Observation = [("a.yaml".to_owned(), FileObservation::read("x: 1", None))].into_iter().collect();
        assert!(debouncer.observe(set.clone(), t).is_none()); // seen once
        let emitted = debouncer.observe(set.clone(), t + Duration::from_millis(250)).unwrap(); // twice
        assert_eq!(emitted.changes.len(), 1);
        assert!(debouncer.observe(set, t + Duration::from_millis(500)).is_none());
        // already emitted
    }
}
