//! `GET /metrics`: counters, queue depth and health in the Prometheus text
//! format (version 0.0.4).

use std::fmt::Write;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use taskdaemon_service::{Access, Counters, Health, Histogram};

use crate::problem::Problem;
use crate::state::AppState;

pub async fn metrics(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
) -> Result<Response, Problem> {
    if !matches!(access.scope(), taskdaemon_service::ShareScope::All) {
        return Err(Problem::forbidden("metrics cover the whole workspace"));
    }
    let (counters, health) = state.call(|s| Ok((s.counters()?, s.health()))).await?;
    let mut response = render(&counters, &health).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// The exposition text.
pub fn render(counters: &Counters, health: &Health) -> String {
    let mut out = String::new();
    family(&mut out, "taskdaemon_tasks", "gauge", "Tasks by status.");
    for (status, n) in &counters.tasks {
        let _ = writeln!(out, "taskdaemon_tasks{{status=\"{}\"}} {n}", escape(status));
    }
    family(
        &mut out,
        "taskdaemon_tasks_by_kind",
        "gauge",
        "Tasks by kind.",
    );
    for (kind, n) in &counters.kinds {
        let _ = writeln!(
            out,
            "taskdaemon_tasks_by_kind{{kind=\"{}\"}} {n}",
            escape(kind)
        );
    }
    family(
        &mut out,
        "taskdaemon_queue_depth",
        "gauge",
        "Queue items not finished, by queue.",
    );
    for (queue, n) in &counters.queue_depth {
        let _ = writeln!(
            out,
            "taskdaemon_queue_depth{{queue=\"{}\"}} {n}",
            escape(queue)
        );
    }
    family(
        &mut out,
        "taskdaemon_workers",
        "gauge",
        "Claiming workers by state.",
    );
    for (state, n) in &counters.workers {
        let _ = writeln!(out, "taskdaemon_workers{{state=\"{}\"}} {n}", escape(state));
    }
    family(
        &mut out,
        "taskdaemon_last_event_seq",
        "counter",
        "Sequence number of the newest event.",
    );
    let _ = writeln!(out, "taskdaemon_last_event_seq {}", counters.last_event_seq);
    counter(
        &mut out,
        "taskdaemon_claims_total",
        "Attempts of queue items claimed by a worker (events archived away are not counted).",
        counters.claims,
    );
    counter(
        &mut out,
        "taskdaemon_retries_total",
        "Restarts of processes and retries of queue items scheduled (events archived away are not counted).",
        counters.retries,
    );
    histogram(
        &mut out,
        "taskdaemon_exit_detection_seconds",
        "From a supervised command's exit (its shim's wait returning) to the exit written in the store.",
        &counters.exit_detection,
    );
    gauge(
        &mut out,
        "process_resident_memory_bytes",
        "Resident memory of the serving process.",
        health.process_rss_kb.map(|kb| (kb * 1024) as f64),
    );
    if health.process_cpu_seconds.is_some() {
        family(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "CPU time of the serving process.",
        );
        let _ = writeln!(
            out,
            "process_cpu_seconds_total {}",
            health.process_cpu_seconds.unwrap_or(0.0)
        );
    }
    if let Some([one, five, fifteen]) = health.load {
        family(
            &mut out,
            "taskdaemon_host_load",
            "gauge",
            "Host load average.",
        );
        for (window, value) in [("1m", one), ("5m", five), ("15m", fifteen)] {
            let _ = writeln!(out, "taskdaemon_host_load{{window=\"{window}\"}} {value}");
        }
    }
    gauge(
        &mut out,
        "taskdaemon_host_cpus",
        "CPUs of the host.",
        Some(health.cpus as f64),
    );
    gauge(
        &mut out,
        "taskdaemon_host_memory_total_bytes",
        "Host memory.",
        health.mem_total_kb.map(|kb| (kb * 1024) as f64),
    );
    gauge(
        &mut out,
        "taskdaemon_host_memory_available_bytes",
        "Host memory available.",
        health.mem_available_kb.map(|kb| (kb * 1024) as f64),
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn histogram(out: &mut String, name: &str, help: &str, histogram: &Histogram) {
    family(out, name, "histogram", help);
    for bucket in &histogram.buckets {
        let (bound, n) = (bucket.le, bucket.count);
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.count);
    let _ = writeln!(out, "{name}_sum {}", histogram.sum_seconds);
    let _ = writeln!(out, "{name}_count {}", histogram.count);
}

fn gauge(out: &mut String, name: &str, help: &str, value: Option<f64>) {
    if let Some(value) = value {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use taskdaemon_service::Bucket;

    use super::*;

    #[test]
    fn renders_labelled_families() {
        let mut counters = Counters::default();
        counters.tasks.insert("running".into(), 2);
        counters.queue_depth.insert("a\"b".into(), 3);
        counters.retries = 4;
        counters.exit_detection = Histogram {
            buckets: vec![
                Bucket {
                    le: 0.001,
                    count: 1,
                },
                Bucket { le: 0.5, count: 2 },
            ],
            sum_seconds: 1.25,
            count: 3,
        };
        let text = render(
            &counters,
            &Health {
                cpus: 2,
                load: Some([0.5, 0.25, 0.0]),
                ..Health::default()
            },
        );
        assert!(text.contains("# TYPE taskdaemon_tasks gauge\n"), "{text}");
        assert!(
            text.contains("taskdaemon_tasks{status=\"running\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("taskdaemon_queue_depth{queue=\"a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("taskdaemon_host_load{window=\"1m\"} 0.5\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE taskdaemon_retries_total counter\ntaskdaemon_retries_total 4\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE taskdaemon_exit_detection_seconds histogram\n\
                 taskdaemon_exit_detection_seconds_bucket{le=\"0.001\"} 1\n\
                 taskdaemon_exit_detection_seconds_bucket{le=\"0.5\"} 2\n\
                 taskdaemon_exit_detection_seconds_bucket{le=\"+Inf\"} 3\n\
                 taskdaemon_exit_detection_seconds_sum 1.25\n\
                 taskdaemon_exit_detection_seconds_count 3\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("process_resident_memory_bytes"),
            "absent when unknown"
        );
    }
}
