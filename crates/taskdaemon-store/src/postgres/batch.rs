//! Many task changes written as one statement: the rows of changes that set
//! the same columns travel as arrays and are `unnest`ed on the server, so a
//! batch of claims or completions updates its tasks and appends its events
//! in one round trip instead of one per task (see `apply_all`).

use postgres::types::{ToSql, Type};
use taskdaemon_core::TaskRecord;

use super::Tx;
use crate::Result;
use crate::changes::{Change, Column};

/// One column's values for every change of a shape.
enum Values {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<bool>),
}

impl Values {
    fn of(value: &Column) -> Self {
        match value {
            Column::Int(_) => Values::Int(Vec::new()),
            Column::Text(_) => Values::Text(Vec::new()),
            Column::Bool(_) => Values::Bool(Vec::new()),
        }
    }

    /// Whether `value` belongs in this column (same type).
    fn fits(&self, value: &Column) -> bool {
        matches!(
            (self, value),
            (Values::Int(_), Column::Int(_))
                | (Values::Text(_), Column::Text(_))
                | (Values::Bool(_), Column::Bool(_))
        )
    }

    fn push(&mut self, value: Column) {
        match (self, value) {
            (Values::Int(v), Column::Int(x)) => v.push(x),
            (Values::Text(v), Column::Text(x)) => v.push(x),
            (Values::Bool(v), Column::Bool(x)) => v.push(x),
            // `fits` chose this shape: the types agree.
            _ => unreachable!("a column's type differs within one shape"),
        }
    }

    fn param(&self) -> (&(dyn ToSql + Sync), Type, &'static str) {
        match self {
            Values::Int(v) => (v, Type::INT8_ARRAY, "int8[]"),
            Values::Text(v) => (v, Type::TEXT_ARRAY, "text[]"),
            Values::Bool(v) => (v, Type::BOOL_ARRAY, "bool[]"),
        }
    }
}

/// The changes that set the same columns (names and types, in order).
pub(super) struct Shape<'a> {
    columns: Vec<(&'static str, Values)>,
    ids: Vec<&'a str>,
    statuses: Vec<&'static str>,
    actors: Vec<String>,
    kinds: Vec<&'static str>,
    messages: Vec<String>,
    befores: Vec<String>,
    afters: Vec<String>,
}

impl<'a> Shape<'a> {
    fn matches(&self, change: &Change) -> bool {
        self.columns.len() == change.columns.len()
            && self
                .columns
                .iter()
                .zip(&change.columns)
                .all(|((name, values), (column, value))| name == column && values.fits(value))
    }

    /// Adds the checked `change` of `task` (with its event's `before` and
    /// `after`) to the shape it has, starting that shape if it is new.
    pub(super) fn add(
        shapes: &mut Vec<Shape<'a>>,
        task: &'a TaskRecord,
        change: Change,
        before: serde_json::Value,
        after: serde_json::Value,
    ) {
        let index = match shapes.iter().position(|s| s.matches(&change)) {
            Some(index) => index,
            None => {
                shapes.push(Shape {
                    columns: change
                        .columns
                        .iter()
                        .map(|(name, value)| (*name, Values::of(value)))
                        .collect(),
                    ids: Vec::new(),
                    statuses: Vec::new(),
                    actors: Vec::new(),
                    kinds: Vec::new(),
                    messages: Vec::new(),
                    befores: Vec::new(),
                    afters: Vec::new(),
                });
                shapes.len() - 1
            }
        };
        let shape = &mut shapes[index];
        shape.ids.push(&task.id);
        shape.statuses.push(change.to.as_str());
        shape.kinds.push(change.event.kind.as_str());
        shape.actors.push(change.event.actor);
        shape.messages.push(change.event.message);
        shape.befores.push(before.to_string());
        shape.afters.push(after.to_string());
        for ((_, values), (_, value)) in shape.columns.iter_mut().zip(change.columns) {
            values.push(value);
        }
    }

    /// Updates every task of the shape and appends their events, in the
    /// order they were added, in one statement.
    pub(super) fn write(&self, tx: &mut Tx<'_>, now: i64) -> Result<()> {
        let mut params: Vec<(&(dyn ToSql + Sync), Type)> = vec![
            (&now, Type::INT8),
            (&self.ids, Type::TEXT_ARRAY),
            (&self.statuses, Type::TEXT_ARRAY),
            (&self.actors, Type::TEXT_ARRAY),
            (&self.kinds, Type::TEXT_ARRAY),
            (&self.messages, Type::TEXT_ARRAY),
            (&self.befores, Type::TEXT_ARRAY),
            (&self.afters, Type::TEXT_ARRAY),
        ];
        let mut arrays = String::from(
            "$2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]",
        );
        let mut names = String::from("id, status, actor, kind, message, before, after");
        let mut set = String::new();
        for (index, (column, values)) in self.columns.iter().enumerate() {
            let (param, ty, cast) = values.param();
            params.push((param, ty));
            arrays.push_str(&format!(", ${}::{cast}", params.len()));
            names.push_str(&format!(", c{index}"));
            set.push_str(&format!(", {column} = v.c{index}"));
        }
        let sql = format!(
            "WITH v AS (SELECT * FROM unnest({arrays}) WITH ORDINALITY AS v({names}, ord)),
               changed AS (
                 UPDATE tasks t SET status = v.status, updated_at = $1{set}
                 FROM v WHERE t.id = v.id RETURNING t.id)
             INSERT INTO events (at, task_id, actor, kind, message, before, after)
             SELECT $1, v.id, v.actor, v.kind, v.message, v.before, v.after
             FROM v JOIN changed ON changed.id = v.id ORDER BY v.ord"
        );
        tx.execute_cached(&sql, &params)?;
        Ok(())
    }
}
