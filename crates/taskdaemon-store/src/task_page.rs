//! One page of a listing of every task kind, newest first, with the filters
//! the web API and dashboard offer. The WHERE clause is built here once; each
//! backend only says how a placeholder is spelled and runs it.

use crate::TaskPageFilter;

/// The clause after `WHERE` (or `TRUE`) and its text arguments, in order;
/// `placeholder(n)` spells the n-th (1-based) argument.
pub(crate) fn where_clause(
    filter: &TaskPageFilter,
    placeholder: impl Fn(usize) -> String,
) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let bind = |value: &str, args: &mut Vec<String>| {
        args.push(value.to_owned());
        placeholder(args.len())
    };
    if let Some(status) = filter.status {
        conditions.push(format!(
            "tasks.status = {}",
            bind(status.as_str(), &mut args)
        ));
    }
    if let Some(kind) = filter.kind {
        conditions.push(format!("tasks.kind = {}", bind(kind.as_str(), &mut args)));
    }
    if let Some(tool) = &filter.tool {
        conditions.push(format!("tasks.tool = {}", bind(tool, &mut args)));
    }
    if let Some(session) = &filter.session {
        conditions.push(format!("tasks.session = {}", bind(session, &mut args)));
    }
    if let Some(id) = &filter.id {
        conditions.push(format!("tasks.id = {}", bind(id, &mut args)));
    }
    if let Some(queue) = &filter.queue {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM queue_items q WHERE q.task_id = tasks.id AND q.queue = {})",
            bind(queue, &mut args)
        ));
    }
    if let Some(label) = &filter.label {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM task_labels tl WHERE tl.task_id = tasks.id AND tl.label = {})",
            bind(label, &mut args)
        ));
    }
    if let Some(before) = &filter.before_uuid {
        conditions.push(format!("tasks.uuid < {}", bind(before, &mut args)));
    }
    if conditions.is_empty() {
        ("TRUE".to_owned(), args)
    } else {
        (conditions.join(" AND "), args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskdaemon_core::{Status, TaskKind};

    #[test]
    fn every_filter_binds_one_argument_in_order() {
        let filter = TaskPageFilter {
            status: Some(Status::Running),
            kind: Some(TaskKind::Agent),
            queue: Some("ad-hoc".into()),
            label: Some("ui".into()),
            before_uuid: Some("0190".into()),
            ..TaskPageFilter::default()
        };
        let (sql, args) = where_clause(&filter, |n| format!("${n}"));
        assert_eq!(args, ["running", "agent", "ad-hoc", "ui", "0190"]);
        assert!(sql.contains("tasks.status = $1"), "{sql}");
        assert!(sql.contains("tasks.uuid < $5"), "{sql}");
        assert_eq!(
            where_clause(&TaskPageFilter::default(), |n| format!("?{n}")).0,
            "TRUE"
        );
    }
}
