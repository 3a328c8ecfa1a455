//! The report: a Markdown table on stdout and the same figures as JSON.

use std::path::Path;

use serde::Serialize;

use crate::stats::{Integrity, Row};

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub rows: Vec<Row>,
    pub integrity: Vec<Integrity>,
}

/// Where the run happened.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub server_core: Option<usize>,
    pub generator_core: Option<usize>,
}

impl Machine {
    /// Reads the CPU model from `/proc/cpuinfo`.
    pub fn here(server_core: Option<usize>, generator_core: Option<usize>) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |m| m.trim().to_owned());
        // Not available_parallelism: under taskset that is the one core we
        // are pinned to.
        let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count().max(1);
        Self { cpu, cores, server_core, generator_core }
    }
}

fn figure(value: f64) -> String {
    if value >= 1000.0 {
        let whole = value.round() as u64;
        let digits = whole.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(' ');
            }
            out.push(c);
        }
        out
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Machine: {} ({} cores); server on core {}, load generator on core {}.\n\n",
            self.machine.cpu,
            self.machine.cores,
            self.machine.server_core.map_or("any".into(), |c| c.to_string()),
            self.machine.generator_core.map_or("any".into(), |c| c.to_string()),
        );
        out.push_str("| scenario | metric | value | target | met |\n| --- | --- | ---: | --- | --- |\n");
        for row in &self.rows {
            let met = match row.meets {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            };
            out.push_str(&format!(
                "| {} | {} | {} {} | {} | {} |\n",
                row.scenario,
                row.metric,
                figure(row.value),
                row.unit,
                row.target.as_deref().unwrap_or(""),
                met
            ));
        }
        out.push_str("\n| scenario | lost | duplicated | closed by server |\n| --- | ---: | ---: | ---: |\n");
        for check in &self.integrity {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                check.scenario, check.lost, check.duplicated, check.closed_by_server
            ));
        }
        out
    }

    /// Writes the JSON form.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self)?)?;
        Ok(())
    }

    /// Whether every message arrived exactly once.
    pub fn intact(&self) -> bool {
        self.integrity.iter().all(|c| c.lost == 0 && c.duplicated == 0)
    }
}
