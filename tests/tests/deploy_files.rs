//! Every fleet file under `deploy/` is checked by the tool that reads it:
//! YAML and JSON parse (PyYAML from the set-up's Python, serde_json), the
//! NATS configurations pass `nats-server -t`, the systemd units pass
//! `systemd-analyze verify`, and the Kubernetes and compose files name only
//! subcommands and roles the binary has. Containers and Kubernetes
//! themselves are not run here.

use std::path::{Path, PathBuf};
use std::process::Command;

use vidseek_tests::paths::python;
use vidseek_tests::process::{vidseek_bin, workspace_root};

/// The fleet directories (deploy/models and deploy/samples belong to the
/// set-up and have their own checks).
const FLEET_DIRS: &[&str] = &["nats", "docker", "k8s", "systemd", "prometheus", "grafana"];

fn files(ext: &[&str]) -> Vec<PathBuf> {
    let mut found = vec![];
    for dir in FLEET_DIRS {
        let dir = workspace_root().join("deploy").join(dir);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{} is missing: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if ext.iter().any(|e| name.ends_with(e)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every YAML document of every file, as JSON (PyYAML's safe loader).
fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let output = Command::new(python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{} is not valid YAML:\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(!docs.is_empty(), "{} is empty", path.display());
    docs
}

#[test]
fn yaml_files_parse_and_kubernetes_objects_are_complete() {
    let yaml = files(&[".yaml", ".yml"]);
    assert!(
        yaml.len() >= 4,
        "expected compose, k8s and prometheus files: {yaml:?}"
    );
    let mut kinds = vec![];
    for path in &yaml {
        for doc in yaml_documents(path) {
            if let Some(kind) = doc["kind"].as_str() {
                assert!(doc["apiVersion"].is_string(), "{}: {doc}", path.display());
                assert!(
                    doc["metadata"]["name"].is_string(),
                    "{}: {doc}",
                    path.display()
                );
                kinds.push(kind.to_string());
                if kind == "Deployment" || kind == "StatefulSet" {
                    check_workload(path, &doc);
                }
            }
        }
    }
    for kind in ["Deployment", "StatefulSet", "Service", "ConfigMap"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} in deploy/k8s");
    }
}

/// Containers request resources, the gateway is probed on /healthz, and
/// every vidseek container runs a subcommand the binary accepts.
fn check_workload(path: &Path, doc: &serde_json::Value) {
    let name = doc["metadata"]["name"].as_str().unwrap();
    let containers = doc["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: {name} has no containers", path.display()));
    for container in containers {
        assert!(
            container["resources"]["requests"]["cpu"].is_string(),
            "{}: {name} requests no CPU",
            path.display()
        );
        if container["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("vidseek"))
        {
            let args: Vec<&str> = container["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            check_arguments(&args);
            if args[0] == "gateway" {
                for probe in ["readinessProbe", "livenessProbe"] {
                    assert_eq!(
                        container[probe]["httpGet"]["path"],
                        "/healthz",
                        "{}: {name} {probe}",
                        path.display()
                    );
                }
            }
        }
    }
}

/// `vidseek ARGS --help` succeeds: the subcommand, role and flags exist.
fn check_arguments(args: &[&str]) {
    let output = Command::new(vidseek_bin())
        .args(args)
        .arg("--help")
        .output()
        .expect("run vidseek");
    assert!(
        output.status.success(),
        "vidseek {args:?} is not a valid command line:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn compose_services_run_real_commands_on_a_three_node_cluster() {
    let path = workspace_root().join("deploy/docker/compose.yaml");
    let compose = yaml_documents(&path).remove(0);
    let services = compose["services"].as_object().expect("services");
    for node in ["n1", "n2", "n3"] {
        assert!(services.contains_key(node), "no NATS node {node}");
    }
    let scraped = prometheus_targets();
    let mut roles = vec![];
    for (name, service) in services {
        if service["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("vidseek"))
        {
            let args: Vec<&str> = service["command"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} has no command"))
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            check_arguments(&args);
            assert_eq!(service["environment"]["VIDSEEK_REPLICAS"], "3", "{name}");
            if args[0] == "worker" {
                let addr = service["environment"]["VIDSEEK_METRICS_ADDR"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name} serves no metrics"));
                let port = addr.rsplit(':').next().unwrap();
                assert!(
                    scraped.contains(&(name.clone(), port.to_string())),
                    "prometheus.yml does not scrape {name} on port {port}: {scraped:?}"
                );
            }
            roles.push(name.clone());
        }
    }
    for role in [
        "gateway", "query", "encoder", "ranker-0", "ranker-1", "ingest",
    ] {
        assert!(roles.iter().any(|r| r == role), "no {role} in {roles:?}");
    }
    assert!(services.contains_key("prometheus"));
}

/// Thumbnails and uploads live in NATS in every fleet file, and no vidseek
/// process writes to a volume another shares: compose mounts named volumes
/// into vidseek services read-only, and Kubernetes asks for no volume that
/// several pods write (ReadWriteMany) and mounts the data directory from
/// each pod's own emptyDir.
#[test]
fn fleet_files_keep_media_in_nats_and_share_no_writable_disk() {
    let path = workspace_root().join("deploy/docker/compose.yaml");
    let compose = yaml_documents(&path).remove(0);
    let named: Vec<&String> = compose["volumes"]
        .as_object()
        .map(|v| v.keys().collect())
        .unwrap_or_default();
    for (name, service) in compose["services"].as_object().expect("services") {
        if !service["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("vidseek"))
        {
            continue;
        }
        assert_eq!(
            service["environment"]["VIDSEEK_MEDIA_STORE"], "nats",
            "{name}"
        );
        for mount in service["volumes"].as_array().into_iter().flatten() {
            let mount = mount.as_str().expect("short volume syntax");
            let source = mount.split(':').next().unwrap();
            if named.iter().any(|v| v.as_str() == source) {
                assert!(
                    mount.ends_with(":ro"),
                    "{name} writes to the shared {mount}"
                );
            }
        }
    }

    let path = workspace_root().join("deploy/k8s/vidseek.yaml");
    for doc in yaml_documents(&path) {
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        match doc["kind"].as_str() {
            Some("ConfigMap") => {
                assert_eq!(doc["data"]["VIDSEEK_MEDIA_STORE"], "nats", "{name}")
            }
            Some("PersistentVolumeClaim") => {
                let modes = doc["spec"]["accessModes"].to_string();
                assert!(!modes.contains("ReadWriteMany"), "{name}: {modes}");
            }
            Some("Deployment") => {
                let volumes = &doc["spec"]["template"]["spec"]["volumes"];
                for volume in volumes.as_array().into_iter().flatten() {
                    if volume["name"] == "data" {
                        assert!(volume["emptyDir"].is_object(), "{name}: {volume}");
                    }
                }
            }
            _ => {}
        }
    }

    let env = std::fs::read_to_string(workspace_root().join("deploy/systemd/vidseek.env"))
        .expect("vidseek.env");
    assert!(
        env.lines().any(|l| l.trim() == "VIDSEEK_MEDIA_STORE=nats"),
        "{env}"
    );
}

/// `(host, port)` of every target prometheus.yml scrapes, static or found
/// by DNS.
fn prometheus_targets() -> Vec<(String, String)> {
    let config =
        yaml_documents(&workspace_root().join("deploy/prometheus/prometheus.yml")).remove(0);
    let mut targets = vec![];
    for job in config["scrape_configs"].as_array().expect("scrape_configs") {
        for sd in job["static_configs"].as_array().into_iter().flatten() {
            for target in sd["targets"].as_array().expect("targets") {
                let (host, port) = target
                    .as_str()
                    .unwrap()
                    .rsplit_once(':')
                    .expect("host:port");
                targets.push((host.to_string(), port.to_string()));
            }
        }
        for sd in job["dns_sd_configs"].as_array().into_iter().flatten() {
            let port = sd["port"].as_u64().expect("port").to_string();
            for name in sd["names"].as_array().expect("names") {
                targets.push((name.as_str().unwrap().to_string(), port.clone()));
            }
        }
    }
    targets
}

#[test]
fn json_files_parse_and_the_dashboard_queries_real_metrics() {
    let json = files(&[".json"]);
    assert!(!json.is_empty(), "no Grafana dashboard");
    // The gateway's own metrics and the worker roles' (which the gateway
    // also serves).
    let metrics: String = ["gateway/src/metrics.rs", "bus/src/metrics.rs"]
        .iter()
        .map(|source| {
            std::fs::read_to_string(workspace_root().join(source))
                .unwrap_or_else(|e| panic!("{source}: {e}"))
        })
        .collect();
    for path in json {
        let text = std::fs::read_to_string(&path).expect("read");
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
        let panels = value["panels"].as_array().expect("dashboard panels");
        assert!(!panels.is_empty());
        for panel in panels {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr");
                // Every metric a panel plots is one vidseek exports.
                let plotted: Vec<&str> = expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("vidseek_"))
                    .collect();
                assert!(!plotted.is_empty(), "no vidseek metric in {expr}");
                for metric in plotted {
                    let base = metric
                        .trim_end_matches("_bucket")
                        .trim_end_matches("_count")
                        .trim_end_matches("_sum");
                    assert!(
                        exports(&metrics, base),
                        "{}: {metric} is not exported",
                        path.display()
                    );
                }
            }
        }
    }
}

/// Whether `source` names metric `name` whole (not only a longer one).
fn exports(source: &str, name: &str) -> bool {
    source.match_indices(name).any(|(at, _)| {
        let next = source[at + name.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn nats_configurations_pass_nats_server_test() {
    let configs = files(&[".conf"]);
    assert_eq!(configs.len(), 3, "three cluster nodes: {configs:?}");
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    for path in configs {
        let output = Command::new(&bin)
            .arg("-t")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("jetstream") && text.contains("routes"));
    }
}

/// systemd-analyze reports bad directives on stderr with a zero exit, so
/// both are checked. The binary path is pointed at the built one (verify
/// wants an executable) and templates are verified as an instance.
#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let units = files(&[".service"]);
    assert_eq!(units.len(), 3, "{units:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = vidseek_bin();
    for path in units {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/vidseek "), "{name}");
        let instance = name.replace("@.service", "@0.service");
        let copy = dir.path().join(&instance);
        std::fs::write(
            &copy,
            text.replace("/usr/local/bin/vidseek", &bin.display().to_string()),
        )
        .unwrap();
        let output = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .expect("systemd-analyze (Debian package systemd) is missing");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.trim().is_empty(),
            "{name}: {stderr}"
        );
        // The command line the unit runs exists.
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/vidseek "))
            .unwrap()
            .replace(
                "%i",
                if name.contains("ranker") {
                    "0"
                } else {
                    "encoder"
                },
            );
        check_arguments(&exec.split_whitespace().collect::<Vec<_>>());
    }
}
