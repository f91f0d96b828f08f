//! The markdown report: one table of every row, then details per latency.

use std::{fmt::Write as _, time::Duration};

use crate::{
    Config, LatencyReport, Row,
    memory::{PG_SAMPLE_EVERY_N, SAMPLE_EVERY},
};

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn opt_mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", mib(k)))
        .unwrap_or_else(|| "n/a".into())
}

fn cache_label(secs: u64) -> String {
    if secs == 0 {
        "off".into()
    } else {
        format!("{secs} s")
    }
}

pub fn render(reports: &[LatencyReport], config: &Config, took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## Paddock load: GET /portfolio — {} ({} members per group, {} s per row)\n",
        config.label,
        config.members,
        config.run_for.as_secs()
    );
    let _ = writeln!(
        out,
        "| Alpaca latency | cache | accounts/member | concurrency | requests | errors | req/s | p50 ms | p99 ms | peak RSS MiB |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let rows: Vec<&Row> = reports.iter().flat_map(|r| &r.rows).collect();
    for row in &rows {
        let concurrency = match &row.storm {
            Some(storm) => format!("{} + {} sign-ins/s", row.concurrency, storm.per_second),
            None => row.concurrency.to_string(),
        };
        let _ = writeln!(
            out,
            "| {} ms | {} | {} | {concurrency} | {} | {} | {:.1} | {:.2} | {:.2} | {:.1} |",
            row.latency_ms,
            cache_label(row.cache_secs),
            row.accounts,
            row.requests,
            row.errors,
            row.per_second(),
            ms(row.p50),
            ms(row.p99),
            mib(row.peak.server_kib),
        );
    }
    let _ = writeln!(
        out,
        "\nPercentiles cover every measured request (errors included); errors = non-200 or transport failure; \
         peak RSS = the server's VmRSS, sampled every {} ms during the row.",
        SAMPLE_EVERY.as_millis()
    );
    for storm_row in rows.iter().filter(|r| r.storm.is_some()) {
        let Some(storm) = &storm_row.storm else {
            continue;
        };
        let quiet = rows.iter().find(|r| {
            r.storm.is_none()
                && (r.latency_ms, r.cache_secs, r.accounts, r.concurrency)
                    == (
                        storm_row.latency_ms,
                        storm_row.cache_secs,
                        storm_row.accounts,
                        storm_row.concurrency,
                    )
        });
        let ratio = quiet
            .map(|q| format!("{:.2}×", ms(storm_row.p99) / ms(q.p99).max(0.001)))
            .unwrap_or_else(|| "n/a".into());
        let _ = writeln!(
            out,
            "- sign-in storm, cache {}: {} of {} sign-ins done at {}/s (p50 {:.0} ms, p99 {:.0} ms{}); /portfolio p99 {:.2} ms vs {:.2} ms without: {ratio}",
            cache_label(storm_row.cache_secs),
            storm.completed,
            storm.started,
            storm.per_second,
            ms(storm.p50),
            ms(storm.p99),
            if storm.errors.is_empty() {
                String::new()
            } else {
                format!(", errors: {:?}", storm.errors)
            },
            ms(storm_row.p99),
            quiet.map_or(0.0, |q| ms(q.p99)),
        );
    }
    for report in reports {
        render_details(&mut out, report, config);
    }
    let _ = writeln!(out, "\nWhole bench took {:.1} s.", took.as_secs_f64());
    out
}

fn render_details(out: &mut String, report: &LatencyReport, config: &Config) {
    let _ = writeln!(out, "\n### Simulated latency {} ms\n", report.latency_ms);
    let _ = writeln!(
        out,
        "- ready after {:.1} s; setup of {} members took {:.1} s",
        report.ready_after.as_secs_f64(),
        config.members * config.accounts().len(),
        report.setup_took.as_secs_f64()
    );
    let pg_idle = report
        .idle_postgres
        .map(|(n, k)| format!("{:.1} MiB PSS over {n} processes", mib(k)))
        .unwrap_or_else(|| "n/a".into());
    let _ = writeln!(
        out,
        "- server RSS idle after start: {} (embedded PostgreSQL not included; it was {pg_idle}); after member setup: {}",
        opt_mib(report.idle_rss_kib),
        opt_mib(report.after_setup_rss_kib)
    );
    let peak_pg = report
        .rows
        .iter()
        .map(|r| r.peak.postgres_kib)
        .max()
        .unwrap_or(0);
    let peak_procs = report
        .rows
        .iter()
        .map(|r| r.peak.postgres_procs)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "- PostgreSQL peak {:.1} MiB PSS over up to {peak_procs} processes (sampled every {} ms)",
        mib(peak_pg),
        SAMPLE_EVERY.as_millis() * u128::from(PG_SAMPLE_EVERY_N)
    );
    for row in &report.rows {
        let mut extra = format!(
            "- cache {}, {} acct/member, c={}{}: max latency {:.1} ms ({} memory samples)",
            cache_label(row.cache_secs),
            row.accounts,
            row.concurrency,
            if row.storm.is_some() { " + storm" } else { "" },
            ms(row.max),
            row.peak.samples,
        );
        if row.degraded > 0 {
            let _ = write!(
                extra,
                ", {} 200s with a degraded account card",
                row.degraded
            );
        }
        if row.warmup_errors > 0 {
            let _ = write!(extra, ", {} warm-up errors", row.warmup_errors);
        }
        if !row.error_kinds.is_empty() {
            let kinds: Vec<String> = row
                .error_kinds
                .iter()
                .map(|(k, v)| format!("{k} ×{v}"))
                .collect();
            let _ = write!(extra, ", errors: {}", kinds.join(", "));
        }
        let _ = writeln!(out, "{extra}");
    }
    let _ = writeln!(out, "- stop: {}", report.stops.join("; "));
    if report.log_findings.is_empty() {
        let _ = writeln!(out, "- logs: no warnings or errors");
    }
    for finding in &report.log_findings {
        let _ = writeln!(out, "- {finding}");
    }
}
