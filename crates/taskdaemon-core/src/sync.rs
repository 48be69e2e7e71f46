//! Git-friendly sync: the canonical form of an export (records in a stable
//! order, object keys sorted) and the three-way merge that
//! `taskdaemon merge-driver` runs when git merges two branches' exports.
//!
//! The merge works on JSON objects, not on the store's types, so fields a
//! newer build adds (typed links, gates...) merge by the same rules without
//! this module knowing them:
//! - records are matched by type and identity (`id`, else `name`, `key`,
//!   `task_id`); events by their content, since every clone numbers its own;
//! - a record or field changed on one side only takes that side's value;
//!   a record deleted on one side and untouched on the other is deleted;
//! - arrays changed on both sides merge as sets: what either side added is
//!   kept, what one side removed and the other kept untouched goes; the
//!   result is sorted;
//! - `note`/`notes` text changed on both sides keeps the paragraphs of both,
//!   without duplicates;
//! - any other scalar changed on both sides comes from the side whose record
//!   has the newer `updated_at` (ties broken by content, so the merge is
//!   commutative).
//!
//! Two records new on both sides under one id but with a different `uuid`
//! or `created_at` are two things that collided on an id: the merge refuses
//! rather than fold one into the other.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One export record as JSON.
pub type Record = Map<String, Value>;

/// Why two exports cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("{file}, line {line}: {message}")]
    Malformed {
        file: String,
        line: usize,
        message: String,
    },
    #[error(
        "{kind} {id} was created on both sides as different records ({field} differs): their ids collided; \
         set `[tracked] ids = \"hash\"` in .taskdaemon/config.toml of every clone so new ids cannot"
    )]
    Collision {
        kind: String,
        id: String,
        field: String,
    },
}

/// The record types of an export in the order an import reads them; types
/// this build does not know come after, by name.
const TYPE_ORDER: [&str; 14] = [
    "header",
    "counter",
    "meta",
    "session",
    "task",
    "memory",
    "queue_item",
    "loop",
    "plan",
    "spec",
    "phase",
    "message",
    "pipeline_loop",
    "event",
];

/// Types there is one record of per export.
const SINGLETONS: [&str; 1] = ["header"];
/// Types an import needs in creation order (a spec after those of its plan
/// made before it), so they are ordered by `created_at` before their id.
const CREATION_ORDERED: [&str; 3] = ["spec", "phase", "message"];
/// Fields that name a record, the first present wins.
const IDENTITY_FIELDS: [&str; 4] = ["id", "name", "key", "task_id"];
/// Fields that tell two records under one id apart as different things.
const BIRTH_FIELDS: [&str; 2] = ["uuid", "created_at"];
/// Text fields whose changes on both sides are appended, not chosen.
const NOTE_FIELDS: [&str; 2] = ["note", "notes"];
/// The field numbering sequenced records (events).
const SEQ: &str = "seq";

/// Sort key that orders digit runs by number: `TASK-2` before `TASK-10`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NaturalKey(Vec<Part>);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Text(String),
    /// Digits without leading zeros: shorter is smaller, then by digits.
    Number(usize, String),
}

/// The natural sort key of an id.
pub fn natural_key(text: &str) -> NaturalKey {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        let digits = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        parts.push(if digits {
            let trimmed = run.trim_start_matches('0');
            Part::Number(trimmed.len(), trimmed.to_owned())
        } else {
            Part::Text(run.to_owned())
        });
        rest = tail;
    }
    NaturalKey(parts)
}

/// One export line in canonical form: object keys sorted at every depth.
pub fn canonical_line(mut value: Value) -> String {
    value.sort_all_objects();
    value.to_string()
}

/// Parses an export in JSON lines; `file` names it in errors.
pub fn parse_export(text: &str, file: &str) -> Result<Vec<Record>, SyncError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |message: String| SyncError::Malformed {
            file: file.to_owned(),
            line: index + 1,
            message,
        };
        let record = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(record)) => record,
            Ok(_) => return Err(malformed("expected a JSON object".to_owned())),
            Err(e) => return Err(malformed(e.to_string())),
        };
        if !record.get("type").is_some_and(Value::is_string) {
            return Err(malformed(
                "the record has no string field 'type'".to_owned(),
            ));
        }
        records.push(record);
    }
    Ok(records)
}

/// Writes records as canonical JSON lines.
pub fn render_export(records: Vec<Record>) -> String {
    records
        .into_iter()
        .map(|r| canonical_line(Value::Object(r)) + "\n")
        .collect()
}

/// What matches a record across the three versions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: String,
    /// The identity field's value; for sequenced records, the content
    /// without its number.
    identity: String,
}

fn type_of(record: &Record) -> &str {
    record.get("type").and_then(Value::as_str).unwrap_or("")
}

fn is_sequenced(record: &Record) -> bool {
    record.get(SEQ).is_some_and(Value::is_number) && identity_field(record).is_none()
}

fn identity_field(record: &Record) -> Option<String> {
    IDENTITY_FIELDS.iter().find_map(|f| match record.get(*f) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn canonical(record: &Record) -> String {
    canonical_line(Value::Object(record.clone()))
}

/// A record's key, and its number when it is sequenced (then removed from
/// the record: each clone numbers its own events).
fn key_of(mut record: Record) -> (Key, Option<i64>, Record) {
    let kind = type_of(&record).to_owned();
    if SINGLETONS.contains(&kind.as_str()) {
        return (
            Key {
                kind,
                identity: String::new(),
            },
            None,
            record,
        );
    }
    if is_sequenced(&record) {
        let seq = record.remove(SEQ).and_then(|v| v.as_i64());
        let identity = canonical(&record);
        return (Key { kind, identity }, seq, record);
    }
    let identity = identity_field(&record).unwrap_or_else(|| canonical(&record));
    (Key { kind, identity }, None, record)
}

/// One version's records by key, with the numbers of sequenced ones.
struct Version {
    records: BTreeMap<Key, Record>,
    seqs: BTreeMap<Key, i64>,
}

impl Version {
    fn new(records: Vec<Record>) -> Self {
        let mut version = Version {
            records: BTreeMap::new(),
            seqs: BTreeMap::new(),
        };
        for record in records {
            let (key, seq, record) = key_of(record);
            if let Some(seq) = seq {
                version.seqs.insert(key.clone(), seq);
            }
            version.records.insert(key, record);
        }
        version
    }
}

/// Merges `ours` and `theirs`, two versions of the export `base`. The result
/// is in canonical order; the same inputs give the same output whichever
/// side is `ours`.
pub fn merge(
    base: Vec<Record>,
    ours: Vec<Record>,
    theirs: Vec<Record>,
) -> Result<Vec<Record>, SyncError> {
    let (base, ours, theirs) = (Version::new(base), Version::new(ours), Version::new(theirs));
    let keys: BTreeSet<&Key> = ours
        .records
        .keys()
        .chain(theirs.records.keys())
        .chain(base.records.keys())
        .collect();
    let mut merged = Vec::new();
    for key in keys {
        let o = base.records.get(key);
        let a = ours.records.get(key);
        let b = theirs.records.get(key);
        let record = match (o, a, b) {
            (_, Some(a), Some(b)) => Some(merge_record(key, o, a, b)?),
            (None, Some(x), None) | (None, None, Some(x)) => Some(x.clone()),
            (Some(o), Some(x), None) | (Some(o), None, Some(x)) => (x != o).then(|| x.clone()),
            (_, None, None) => None,
        };
        if let Some(record) = record {
            let seq = [&base, &ours, &theirs]
                .iter()
                .filter_map(|v| v.seqs.get(key).copied())
                .min();
            merged.push((key.clone(), seq, record));
        }
    }
    Ok(order(merged, base.seqs.values().copied().max()))
}

/// Records in canonical order: what `export` writes and [`merge`] returns.
pub fn canonical_order(records: Vec<Record>) -> Vec<Record> {
    let keyed = records.into_iter().map(key_of).collect();
    order(keyed, None)
}

/// Canonical order. Sequenced records the base holds keep its numbers; the
/// others are numbered after the base's last, each at least its own number
/// (so one side's records keep theirs when the other side added none).
fn order(mut merged: Vec<(Key, Option<i64>, Record)>, base_max: Option<i64>) -> Vec<Record> {
    merged.sort_by(|(ka, sa, ra), (kb, sb, rb)| {
        type_rank(&ka.kind)
            .cmp(&type_rank(&kb.kind))
            .then_with(|| ka.kind.cmp(&kb.kind))
            .then_with(|| sa.cmp(sb))
            .then_with(|| creation(&ka.kind, ra).cmp(&creation(&kb.kind, rb)))
            .then_with(|| natural_key(&ka.identity).cmp(&natural_key(&kb.identity)))
    });
    let mut next = i64::MIN;
    merged
        .into_iter()
        .map(|(_, seq, mut record)| {
            if let Some(seq) = seq {
                let floor = match base_max {
                    Some(max) if seq > max => max + 1,
                    _ => i64::MIN,
                };
                let assigned = seq.max(next).max(floor);
                next = assigned + 1;
                record.insert(SEQ.to_owned(), Value::from(assigned));
            }
            record
        })
        .collect()
}

fn type_rank(kind: &str) -> usize {
    TYPE_ORDER
        .iter()
        .position(|t| *t == kind)
        .unwrap_or(TYPE_ORDER.len())
}

fn creation<'r>(kind: &str, record: &'r Record) -> Option<&'r str> {
    CREATION_ORDERED
        .contains(&kind)
        .then(|| record.get("created_at").and_then(Value::as_str))
        .flatten()
}

/// Merges one record both sides hold.
fn merge_record(
    key: &Key,
    base: Option<&Record>,
    a: &Record,
    b: &Record,
) -> Result<Record, SyncError> {
    if a == b || base == Some(b) {
        return Ok(a.clone());
    }
    if base == Some(a) {
        return Ok(b.clone());
    }
    if base.is_none() {
        check_same_birth(key, a, b)?;
    }
    let (newer, older) = if newer_first(a, b) == Ordering::Less {
        (b, a)
    } else {
        (a, b)
    };
    Ok(merge_object(base, newer, older))
}

fn check_same_birth(key: &Key, a: &Record, b: &Record) -> Result<(), SyncError> {
    for field in BIRTH_FIELDS {
        if let (Some(x), Some(y)) = (a.get(field), b.get(field))
            && x != y
        {
            return Err(SyncError::Collision {
                kind: key.kind.clone(),
                id: key.identity.clone(),
                field: field.to_owned(),
            });
        }
    }
    Ok(())
}

/// `Greater` when `a` is the newer record: by `updated_at`, then by content.
fn newer_first(a: &Record, b: &Record) -> Ordering {
    let stamp = |r: &Record| r.get("updated_at").map(|v| v.to_string());
    stamp(a)
        .cmp(&stamp(b))
        .then_with(|| canonical(a).cmp(&canonical(b)))
}

/// Field by field: a field changed on one side only takes that side's value.
fn merge_object(base: Option<&Record>, newer: &Record, older: &Record) -> Record {
    let fields: BTreeSet<&String> = newer.keys().chain(older.keys()).collect();
    let mut out = Record::new();
    for field in fields {
        let o = base.and_then(|b| b.get(field));
        let value = merge_field(field, o, newer.get(field), older.get(field));
        if let Some(value) = value {
            out.insert(field.clone(), value);
        }
    }
    out
}

fn merge_field(
    field: &str,
    base: Option<&Value>,
    newer: Option<&Value>,
    older: Option<&Value>,
) -> Option<Value> {
    if newer == older || base == older {
        return newer.cloned();
    }
    if base == newer {
        return older.cloned();
    }
    match (newer, older) {
        (Some(Value::Array(n)), Some(Value::Array(o))) => {
            let empty = Vec::new();
            let b = match base {
                Some(Value::Array(b)) => b,
                _ => &empty,
            };
            Some(Value::Array(merge_set(b, n, o)))
        }
        (Some(Value::Object(n)), Some(Value::Object(o))) => {
            let b = base.and_then(Value::as_object);
            Some(Value::Object(merge_object(b, n, o)))
        }
        (Some(Value::String(n)), Some(Value::String(o))) if NOTE_FIELDS.contains(&field) => {
            Some(Value::String(append_notes(o, n)))
        }
        _ => newer.cloned(),
    }
}

/// Three-way set merge: what either side added stays, what one side
/// removed goes. The result is sorted (by canonical JSON), the one order
/// both sides agree on whatever order each kept.
fn merge_set(base: &[Value], newer: &[Value], older: &[Value]) -> Vec<Value> {
    let set = |items: &[Value]| -> BTreeMap<String, Value> {
        items.iter().map(|v| (value_key(v), v.clone())).collect()
    };
    let (in_base, in_newer, in_older) = (set(base), set(newer), set(older));
    let mut out = in_newer.clone();
    out.extend(in_older.clone());
    out.retain(|k, _| {
        let both = in_newer.contains_key(k) && in_older.contains_key(k);
        both || !in_base.contains_key(k)
    });
    out.into_values().collect()
}

fn value_key(value: &Value) -> String {
    canonical_line(value.clone())
}

/// The older note's paragraphs, then the newer one's not already there.
fn append_notes(older: &str, newer: &str) -> String {
    let mut paragraphs: Vec<&str> = Vec::new();
    for p in older.split("\n\n").chain(newer.split("\n\n")) {
        let p = p.trim();
        if !p.is_empty() && !paragraphs.contains(&p) {
            paragraphs.push(p);
        }
    }
    paragraphs.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn rec(value: Value) -> Record {
        match value {
            Value::Object(m) => m,
            _ => unreachable!("tests build objects"),
        }
    }

    fn task(id: &str, title: &str, labels: &[&str], updated: u32) -> Record {
        rec(json!({
            "type": "task", "id": id, "uuid": format!("u-{id}"), "title": title,
            "labels": labels, "note": null, "created_at": "c",
            "updated_at": format!("2026-01-01T00:00:{updated:02}Z"),
        }))
    }

    fn ids(records: &[Record]) -> Vec<String> {
        records.iter().filter_map(identity_field).collect()
    }

    #[test]
    fn natural_order_counts_digits() {
        let mut ids = vec!["TASK-10", "TASK-2", "CLAUDE-3", "TASK-1"];
        ids.sort_by_key(|id| natural_key(id));
        assert_eq!(ids, ["CLAUDE-3", "TASK-1", "TASK-2", "TASK-10"]);
    }

    #[test]
    fn canonical_lines_sort_keys() {
        let line = canonical_line(json!({"b": 1, "a": {"z": 1, "y": 2}}));
        assert_eq!(line, r#"{"a":{"y":2,"z":1},"b":1}"#);
    }

    #[test]
    fn both_sides_additions_survive() {
        let base = vec![task("TASK-1", "one", &[], 1)];
        let ours = vec![task("TASK-1", "one", &[], 1), task("A-2", "two", &[], 2)];
        let theirs = vec![task("TASK-1", "one", &[], 1), task("B-2", "three", &[], 3)];
        let merged = merge(base, ours, theirs).unwrap();
        assert_eq!(ids(&merged), ["A-2", "B-2", "TASK-1"]);
    }

    #[test]
    fn labels_union_and_newer_scalars_win() {
        let base = vec![task("TASK-1", "one", &["x"], 1)];
        let ours = vec![task("TASK-1", "ours", &["x", "a"], 2)];
        let theirs = vec![task("TASK-1", "theirs", &["b"], 3)];
        let merged = merge(base, ours, theirs).unwrap();
        assert_eq!(merged[0]["title"], "theirs");
        // `x` was removed by theirs and kept untouched by ours: it goes.
        assert_eq!(merged[0]["labels"], json!(["a", "b"]));
    }

    #[test]
    fn notes_are_appended_once() {
        let mut ours = task("TASK-1", "one", &[], 2);
        ours.insert("note".into(), json!("shared\n\nfrom ours"));
        let mut theirs = task("TASK-1", "one", &[], 3);
        theirs.insert("note".into(), json!("shared\n\nfrom theirs"));
        let merged = merge(
            vec![task("TASK-1", "one", &[], 1)],
            vec![ours],
            vec![theirs],
        )
        .unwrap();
        assert_eq!(merged[0]["note"], "shared\n\nfrom ours\n\nfrom theirs");
    }

    #[test]
    fn colliding_ids_are_refused() {
        let ours = vec![task("TASK-2", "mine", &[], 2)];
        let mut other = task("TASK-2", "yours", &[], 3);
        other.insert("uuid".into(), json!("another"));
        let err = merge(vec![], ours, vec![other]).unwrap_err();
        assert!(err.to_string().contains("task TASK-2"), "{err}");
        assert!(err.to_string().contains("ids = \"hash\""), "{err}");
    }

    #[test]
    fn events_are_renumbered_after_the_base() {
        let event = |seq: i64, msg: &str| {
            rec(json!({"type": "event", "seq": seq, "at": "t", "message": msg}))
        };
        let base = vec![event(1, "first")];
        let ours = vec![event(1, "first"), event(2, "ours")];
        let theirs = vec![event(1, "first"), event(2, "theirs")];
        let merged = merge(base, ours, theirs).unwrap();
        let seqs: Vec<_> = merged.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(merged.len(), 3);
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let err = parse_export("{\"type\":\"task\"}\nnot json\n", "ours.jsonl").unwrap_err();
        assert!(err.to_string().starts_with("ours.jsonl, line 2:"), "{err}");
    }

    /// One edit a clone makes to its tasks.
    #[derive(Debug, Clone)]
    enum Edit {
        Create { title: u8 },
        Retitle { task: usize, title: u8 },
        Label { task: usize, label: u8 },
        Unlabel { task: usize, label: u8 },
        Note { task: usize, text: u8 },
        Delete { task: usize },
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            any::<u8>().prop_map(|title| Edit::Create { title }),
            (0usize..8, any::<u8>()).prop_map(|(task, title)| Edit::Retitle { task, title }),
            (0usize..8, 0u8..5).prop_map(|(task, label)| Edit::Label { task, label }),
            (0usize..8, 0u8..5).prop_map(|(task, label)| Edit::Unlabel { task, label }),
            (0usize..8, 0u8..4).prop_map(|(task, text)| Edit::Note { task, text }),
            (0usize..8).prop_map(|task| Edit::Delete { task }),
        ]
    }

    /// A clone's export: tasks with collision-free ids (the clone's name in
    /// them), and an event per edit.
    #[derive(Debug, Clone)]
    struct Replica {
        tasks: Vec<Record>,
        events: Vec<Record>,
        clock: u32,
    }

    impl Replica {
        fn apply(&mut self, who: &str, edits: &[Edit]) {
            for (n, edit) in edits.iter().enumerate() {
                self.clock += 1;
                let stamp = format!(
                    "2026-01-01T{:02}:{:02}:00Z",
                    self.clock / 60,
                    self.clock % 60
                );
                let len = self.tasks.len();
                let pick = |i: usize| (len > 0).then(|| i % len);
                let mut message = format!("{who} {edit:?}");
                match *edit {
                    Edit::Create { title } => {
                        let id = format!("{who}-{n}-{}", self.clock);
                        let mut t = task(&id, &title.to_string(), &[], 0);
                        t.insert("updated_at".into(), json!(stamp));
                        self.tasks.push(t);
                    }
                    Edit::Delete { task } => {
                        if let Some(i) = pick(task) {
                            self.tasks.remove(i);
                        }
                    }
                    ref other => {
                        let Some(i) = pick(match other {
                            Edit::Retitle { task, .. }
                            | Edit::Label { task, .. }
                            | Edit::Unlabel { task, .. }
                            | Edit::Note { task, .. } => *task,
                            _ => 0,
                        }) else {
                            message.push_str(" (nothing)");
                            continue;
                        };
                        let t = &mut self.tasks[i];
                        match other {
                            Edit::Retitle { title, .. } => {
                                t.insert("title".into(), json!(title.to_string()));
                            }
                            Edit::Label { label, .. } => {
                                let labels = t["labels"].as_array_mut().unwrap();
                                let l = json!(format!("l{label}"));
                                if !labels.contains(&l) {
                                    labels.push(l);
                                }
                            }
                            Edit::Unlabel { label, .. } => {
                                let l = json!(format!("l{label}"));
                                t["labels"].as_array_mut().unwrap().retain(|x| *x != l);
                            }
                            Edit::Note { text, .. } => {
                                let old = t["note"].as_str().unwrap_or("").to_owned();
                                t.insert("note".into(), json!(format!("{old}\n\nn{text}")));
                            }
                            _ => {}
                        }
                        t.insert("updated_at".into(), json!(stamp));
                    }
                }
                let seq = self.events.len() as i64 + 1;
                self.events.push(rec(
                    json!({"type": "event", "seq": seq, "at": stamp, "message": message}),
                ));
            }
        }

        fn export(&self) -> Vec<Record> {
            // In canonical order, as `export` writes it.
            canonical_order(self.tasks.iter().chain(&self.events).cloned().collect())
        }
    }

    fn text(records: &[Record]) -> String {
        render_export(records.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn merge_is_commutative_idempotent_and_loses_nothing(
            shared in prop::collection::vec(edit(), 0..10),
            left in prop::collection::vec(edit(), 0..10),
            right in prop::collection::vec(edit(), 0..10),
        ) {
            let mut base = Replica { tasks: vec![], events: vec![], clock: 0 };
            base.apply("BASE", &shared);
            let (mut a, mut b) = (base.clone(), base.clone());
            a.apply("A", &left);
            b.clock += 7; // the clones' clocks differ
            b.apply("B", &right);
            let (o, a, b) = (base.export(), a.export(), b.export());

            let ab = merge(o.clone(), a.clone(), b.clone()).unwrap();
            let ba = merge(o.clone(), b.clone(), a.clone()).unwrap();
            prop_assert_eq!(text(&ab), text(&ba));

            prop_assert_eq!(text(&merge(o.clone(), a.clone(), a.clone()).unwrap()), text(&a));
            prop_assert_eq!(text(&merge(o.clone(), ab.clone(), ab.clone()).unwrap()), text(&ab));

            // Every task a side created and the other never saw is there,
            // and so is every event of both.
            let merged_ids: BTreeSet<String> = ids(&ab).into_iter().collect();
            let base_ids: BTreeSet<String> = ids(&o).into_iter().collect();
            for id in ids(&a).into_iter().chain(ids(&b)) {
                if !base_ids.contains(&id) {
                    prop_assert!(merged_ids.contains(&id), "lost {}", id);
                }
            }
            let events = |r: &[Record]| r.iter().filter(|r| type_of(r) == "event").count();
            prop_assert_eq!(events(&ab), events(&a) + events(&b) - events(&o));
        }
    }
}
