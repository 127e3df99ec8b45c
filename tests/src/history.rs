//! Random histories checked against a sequential model (the model checker of the faults
//! suite): writers issue random commands on a few counters through their own repositories
//! (retrying conflicts, taking snapshots every four events), readers load them, and every call
//! is recorded with the times it started and returned. [`check`] then holds the history
//! against what the store kept:
//!
//! - each stream's versions run 1, 2, 3... without a gap;
//! - every acknowledged command's events are stored exactly once, at the sequence it was told,
//!   and nothing else is stored;
//! - a command that returned before another was called is stored before it;
//! - replayed in order, every stored decision was valid where it stands (no counter went below
//!   zero), and every refusal was right at some version the counter had during the call;
//! - every load saw the counter as it was at some version between the call and its return.
//!
//! The operations come from a seed (`HISTORY_SEED`), so a failing history is replayed with
//! the same commands; the interleaving is the scheduler's.

use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use cqrs_runtime::doc_support::{Counter, CounterCommand};
use cqrs_runtime::{CommandError, EventStore, Repository, StoredEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a history is made of.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Chooses the operations.
    pub seed: u64,
    /// Operations per writer.
    pub operations: usize,
    /// Counters written to (`h-0`, `h-1`, ...).
    pub counters: usize,
}

impl Plan {
    /// The seed of `HISTORY_SEED`, else one from the clock; operations from `HISTORY_OPS`
    /// (default `operations`).
    pub fn from_env(operations: usize, counters: usize) -> Plan {
        let seed = std::env::var("HISTORY_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| now() as u64);
        let operations = std::env::var("HISTORY_OPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(operations);
        Plan {
            seed,
            operations,
            counters,
        }
    }

    /// The counter ids.
    pub fn ids(&self) -> Vec<String> {
        (0..self.counters).map(|i| format!("h-{i}")).collect()
    }
}

/// One call and what it returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The counter.
    pub id: String,
    /// Nanoseconds since the epoch when it was made and when it returned.
    pub call: u128,
    /// See `call`.
    pub ret: u128,
    /// What it was and what came back.
    pub outcome: Outcome,
}

/// What a call was and what it returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// `Add(n)` or `Subtract(n)` (negative) committed these events from this sequence.
    Committed {
        delta: i64,
        first: u64,
        events: Vec<Uuid>,
    },
    /// `Subtract(n)` refused: the counter was below `n`.
    Refused { by: u64 },
    /// The retries ran out.
    Conflict,
    /// The store failed (the events may or may not be stored).
    Failed { error: String },
    /// A load saw this version and total.
    Loaded { version: u64, total: u64 },
}

/// A small seeded generator (SplitMix64): the same seed gives the same operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `writer` under `seed`.
    pub fn new(seed: u64, writer: u64) -> Rng {
        Rng(seed ^ writer.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Nanoseconds since the epoch: one clock for every process of a history on this machine.
pub fn now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Writer `writer`'s operations of `plan` through `repo`: a load in four, else an add or a
/// subtraction of 1 to 5 (a subtraction may be refused).
pub async fn write<S: EventStore + Clone>(
    repo: &Repository<Counter, S>,
    plan: Plan,
    writer: u64,
) -> Vec<Call> {
    let mut rng = Rng::new(plan.seed, writer);
    let ids = plan.ids();
    let mut calls = Vec::with_capacity(plan.operations);
    for _ in 0..plan.operations {
        let id = ids[rng.below(ids.len() as u64) as usize].clone();
        let kind = rng.below(4);
        let n = 1 + rng.below(5);
        let call = now();
        let outcome = if kind == 0 {
            match repo.load(&id).await {
                Ok(root) => Outcome::Loaded {
                    version: root.version(),
                    total: root.state().total,
                },
                Err(error) => Outcome::Failed {
                    error: error.to_string(),
                },
            }
        } else {
            let (command, delta) = if kind == 1 {
                (CounterCommand::Subtract(n), -(n as i64))
            } else {
                (CounterCommand::Add(n), n as i64)
            };
            match repo.execute(&id, command).await {
                Ok(done) => Outcome::Committed {
                    delta,
                    first: done.events.first().map_or(0, |e| e.sequence),
                    events: done.events.iter().map(|e| e.event_id).collect(),
                },
                Err(CommandError::Rejected(_)) => Outcome::Refused { by: n },
                Err(CommandError::Conflict(_)) => Outcome::Conflict,
                Err(error) => Outcome::Failed {
                    error: error.to_string(),
                },
            }
        };
        calls.push(Call {
            id,
            call,
            ret: now(),
            outcome,
        });
    }
    calls
}

/// Every stream of `plan`'s counters, as stored.
pub async fn streams<S: EventStore>(store: &S, plan: Plan) -> BTreeMap<String, Vec<StoredEvent>> {
    let mut streams = BTreeMap::new();
    for id in plan.ids() {
        let events = store
            .read_stream("counter", &id, 0, usize::MAX)
            .await
            .unwrap();
        streams.insert(id, events);
    }
    streams
}

/// Holds `calls` against `streams` (see the module's rules); the totals the model ends with,
/// or every violation found.
pub fn check(
    calls: &[Call],
    streams: &BTreeMap<String, Vec<StoredEvent>>,
) -> Result<BTreeMap<String, u64>, Vec<String>> {
    let mut errors = Vec::new();
    let mut totals = BTreeMap::new();
    for (id, stream) in streams {
        let mine: Vec<&Call> = calls.iter().filter(|c| &c.id == id).collect();
        let states = check_stream(id, stream, &mut errors);
        check_commits(id, stream, &mine, &mut errors);
        // A command that failed may have stored its events: then a read may see versions no
        // acknowledged command made.
        let uncertain = mine
            .iter()
            .any(|c| matches!(c.outcome, Outcome::Failed { .. }));
        check_reads(id, &states, &mine, uncertain, &mut errors);
        totals.insert(id.clone(), *states.last().unwrap_or(&0));
    }
    if errors.is_empty() {
        Ok(totals)
    } else {
        Err(errors)
    }
}

/// Versions without a gap, and every decision valid where it stands; the counter's total after
/// each version (`states[v]`).
fn check_stream(id: &str, stream: &[StoredEvent], errors: &mut Vec<String>) -> Vec<u64> {
    let mut states = vec![0u64];
    for (i, event) in stream.iter().enumerate() {
        if event.sequence != i as u64 + 1 {
            errors.push(format!(
                "{id}: the event at index {i} has sequence {}",
                event.sequence
            ));
        }
        let n: u64 = event.event.parse().unwrap_or(u64::MAX);
        let total = *states.last().unwrap_or(&0);
        let next = match event.event_type.as_str() {
            "Added" => total + n,
            "Subtracted" if n <= total => total - n,
            other => {
                errors.push(format!(
                    "{id} #{}: {other} {n} on a total of {total}",
                    event.sequence
                ));
                total
            }
        };
        states.push(next);
    }
    states
}

/// Every acknowledged event stored once, where it was said to be, nothing else; real-time order.
fn check_commits(id: &str, stream: &[StoredEvent], mine: &[&Call], errors: &mut Vec<String>) {
    let stored: Vec<Uuid> = stream.iter().map(|e| e.event_id).collect();
    let unique: HashSet<Uuid> = stored.iter().copied().collect();
    if unique.len() != stored.len() {
        errors.push(format!("{id}: an event id is stored twice"));
    }
    let mut acknowledged = HashSet::new();
    let uncertain = mine
        .iter()
        .any(|c| matches!(c.outcome, Outcome::Failed { .. }));
    let mut commits: Vec<(&Call, u64)> = Vec::new();
    for call in mine {
        let Outcome::Committed { first, events, .. } = &call.outcome else {
            continue;
        };
        for (k, event) in events.iter().enumerate() {
            acknowledged.insert(*event);
            let at = (*first as usize + k)
                .checked_sub(1)
                .and_then(|i| stored.get(i));
            if at != Some(event) {
                errors.push(format!(
                    "{id}: acknowledged event {event} is not at sequence {}",
                    *first as usize + k
                ));
            }
        }
        commits.push((call, *first));
    }
    let extra = unique.difference(&acknowledged).count();
    if extra > 0 && !uncertain {
        errors.push(format!(
            "{id}: {extra} stored event(s) no command acknowledged"
        ));
    }
    for (a, a_first) in &commits {
        for (b, b_first) in &commits {
            if a.ret < b.call && a_first >= b_first {
                errors.push(format!(
                    "{id}: a command that returned first (sequence {a_first}) is stored after one called later (sequence {b_first})"
                ));
            }
        }
    }
}

/// Every load and every refusal saw a version the counter had during the call.
fn check_reads(
    id: &str,
    states: &[u64],
    mine: &[&Call],
    uncertain: bool,
    errors: &mut Vec<String>,
) {
    let last_of = |c: &Call| match &c.outcome {
        Outcome::Committed { first, events, .. } => Some(first + events.len() as u64 - 1),
        _ => None,
    };
    for call in mine {
        // At least what returned before the call; at most what was called before the return.
        let lower = mine
            .iter()
            .filter(|c| c.ret < call.call)
            .filter_map(|c| last_of(c))
            .max()
            .unwrap_or(0);
        let upper = mine
            .iter()
            .filter(|c| c.call < call.ret)
            .filter_map(|c| last_of(c))
            .max()
            .unwrap_or(0)
            .max(lower);
        let last = states.len() as u64 - 1;
        let upper = if uncertain { last } else { upper.min(last) };
        match &call.outcome {
            Outcome::Loaded { version, total } => {
                if *version < lower || *version > upper {
                    errors.push(format!(
                        "{id}: a load saw version {version}, outside {lower}..={upper}"
                    ));
                } else if states[*version as usize] != *total {
                    errors.push(format!(
                        "{id}: a load saw total {total} at version {version}, the model has {}",
                        states[*version as usize]
                    ));
                }
            }
            Outcome::Refused { by } if !(lower..=upper).any(|v| states[v as usize] < *by) => {
                errors.push(format!("{id}: subtracting {by} was refused, but the counter had enough at every version in {lower}..={upper}"));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_runtime::{LogPosition, Metadata};

    fn stored(sequence: u64, event_type: &str, n: u64, id: Uuid) -> StoredEvent {
        StoredEvent {
            aggregate_type: "counter".into(),
            aggregate_id: "h-0".into(),
            sequence,
            position: LogPosition::serial(sequence),
            event_id: id,
            event_type: event_type.into(),
            event_version: 1,
            recorded_at: chrono::Utc::now(),
            metadata: Metadata::default(),
            event: n.to_string(),
        }
    }

    fn call(call: u128, ret: u128, outcome: Outcome) -> Call {
        Call {
            id: "h-0".into(),
            call,
            ret,
            outcome,
        }
    }

    /// Two adds of 5, one after the other, and the history's calls.
    fn base() -> (Vec<Call>, BTreeMap<String, Vec<StoredEvent>>) {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let stream = vec![stored(1, "Added", 5, a), stored(2, "Added", 5, b)];
        let calls = vec![
            call(
                1,
                2,
                Outcome::Committed {
                    delta: 5,
                    first: 1,
                    events: vec![a],
                },
            ),
            call(
                3,
                4,
                Outcome::Committed {
                    delta: 5,
                    first: 2,
                    events: vec![b],
                },
            ),
        ];
        (calls, BTreeMap::from([("h-0".to_owned(), stream)]))
    }

    #[test]
    fn a_history_that_fits_passes() {
        let (mut calls, streams) = base();
        calls.push(call(
            5,
            6,
            Outcome::Loaded {
                version: 2,
                total: 10,
            },
        ));
        calls.push(call(0, 7, Outcome::Refused { by: 3 }));
        assert_eq!(
            check(&calls, &streams),
            Ok(BTreeMap::from([("h-0".to_owned(), 10)]))
        );
    }

    #[test]
    fn every_rule_catches_its_violation() {
        type Break = Box<dyn Fn(&mut Vec<Call>, &mut Vec<StoredEvent>)>;
        let violations: Vec<(&str, Break)> = vec![
            ("sequence", Box::new(|_, s| s[1].sequence = 3)),
            (
                "no command acknowledged",
                Box::new(|_, s| s.push(stored(3, "Added", 1, Uuid::now_v7()))),
            ),
            (
                "is not at sequence",
                Box::new(|c, _| {
                    c[1].outcome = Outcome::Committed {
                        delta: 5,
                        first: 1,
                        events: vec![Uuid::now_v7()],
                    }
                }),
            ),
            (
                "stored after one called later",
                Box::new(|c, _| {
                    c[0].ret = 10;
                    c[1].call = 3;
                    c[0].call = 11;
                    c[0].ret = 12;
                }),
            ),
            (
                "on a total of",
                Box::new(|_, s| {
                    s[1].event_type = "Subtracted".into();
                    s[1].event = "6".into();
                }),
            ),
            (
                "a load saw total",
                Box::new(|c, _| {
                    c.push(call(
                        5,
                        6,
                        Outcome::Loaded {
                            version: 2,
                            total: 9,
                        },
                    ))
                }),
            ),
            (
                "outside",
                Box::new(|c, _| {
                    c.push(call(
                        5,
                        6,
                        Outcome::Loaded {
                            version: 1,
                            total: 5,
                        },
                    ))
                }),
            ),
            (
                "was refused",
                Box::new(|c, _| c.push(call(5, 6, Outcome::Refused { by: 3 }))),
            ),
        ];
        for (expected, break_it) in violations {
            let (mut calls, mut streams) = base();
            break_it(&mut calls, streams.get_mut("h-0").unwrap());
            let errors = check(&calls, &streams).expect_err(expected);
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected}: {errors:?}"
            );
        }
    }

    #[test]
    fn a_seed_gives_the_same_operations() {
        let (mut a, mut b) = (Rng::new(42, 1), Rng::new(42, 1));
        let first: Vec<u64> = (0..5).map(|_| a.below(100)).collect();
        assert_eq!(first, (0..5).map(|_| b.below(100)).collect::<Vec<_>>());
        assert_ne!(
            first,
            (0..5)
                .map(|_| Rng::new(42, 2).below(100))
                .collect::<Vec<_>>()
        );
    }
}
