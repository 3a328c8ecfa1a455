//! The files in `deploy/` are accepted by the tools that will read them:
//! `systemd-analyze verify` takes the unit as it is (with `ExecStart`
//! pointed at the binary this build made), and its hardening keeps
//! `systemd-analyze security`'s exposure score low.

use std::process::Command;

use comms_testkit::missing_service;

/// The unit with its `ExecStart` on this build's binary, in a temp folder,
/// followed by the drop-in `deploy/NAME` if given (systemd reads a later
/// `[Service]` section's settings over the earlier ones, as it reads a
/// drop-in's).
fn unit_for_this_build(drop_in: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf) {
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let mut unit = std::fs::read_to_string(format!("{deploy}/comms.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/comms serve"), "the unit runs the installed binary");
    if let Some(name) = drop_in {
        unit.push('\n');
        unit.push_str(&std::fs::read_to_string(format!("{deploy}/{name}")).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("comms.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/comms", env!("CARGO_BIN_EXE_comms"))).unwrap();
    (dir, path)
}

fn systemd_analyze(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("systemd-analyze").args(args).output() {
        Ok(output) => Some(output),
        Err(err) => missing_service("systemd-analyze", "PATH", &err.to_string()),
    }
}

#[test]
fn systemd_accepts_the_unit_and_its_tls_drop_in() {
    for drop_in in [None, Some("comms-tls.conf")] {
        let (_dir, unit) = unit_for_this_build(drop_in);
        let Some(output) = systemd_analyze(&["verify", unit.to_str().unwrap()]) else { return };
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        // verify only warns (exit 0) about lines it ignores: any output is a fault.
        assert!(output.status.success() && said.trim().is_empty(), "systemd-analyze verify with {drop_in:?}: {said}");
    }
}

#[test]
fn the_unit_is_hardened() {
    let (_dir, unit) = unit_for_this_build(None);
    let Some(output) = systemd_analyze(&["security", "--offline=yes", unit.to_str().unwrap()]) else { return };
    let text = String::from_utf8_lossy(&output.stdout);
    let score: f64 = text
        .lines()
        .find_map(|line| line.split("Overall exposure level for comms.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in: {text}"));
    assert!(score <= 2.0, "exposure {score} (0 is best, 10 worst): {text}");
}
