//! `vidseek models ...`: list, pull, import and verify model packs in
//! `{data_dir}/models/`. The work is in `vidseek_workers::modelpack::{pull,
//! import}`; this module parses arguments and prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use vidseek_workers::modelpack::pull::{self, Catalog, PARTIAL_DIR, PullOptions, PullProgress};
use vidseek_workers::modelpack::{ModelPack, import};

/// The packs vidseek knows about, shipped inside the binary.
const CATALOG: &str = include_str!("../../deploy/models/catalog.json");

#[derive(Subcommand, Clone, Debug)]
pub enum ModelsCommand {
    /// Show installed packs and the packs the catalog knows about.
    List,
    /// Download a pack from the catalog (or from --from), verify every
    /// file's sha256 and install it in {data_dir}/models/NAME.
    Pull {
        /// Catalog name of the pack (see `vidseek models list`).
        name: String,
        /// Base URL of a published pack directory, instead of the catalog's
        /// (a mirror, or a pack you exported and published yourself).
        #[arg(long = "from", value_name = "URL")]
        from: Option<String>,
        /// Replace an installed pack of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Install a pack directory that is already on this machine (offline
    /// copies, export_clip.py output) after checking its checksums.
    Import {
        /// The pack directory (holds manifest.json).
        dir: PathBuf,
        /// Install under this name instead of the manifest's.
        #[arg(long)]
        name: Option<String>,
        /// Replace an installed pack of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Check a pack's manifest and every file's sha256.
    Verify {
        /// An installed pack's name, or a pack directory.
        name_or_dir: String,
    },
}

/// Runs one `models` subcommand against `{data_dir}/models`.
pub async fn run(command: ModelsCommand, data_dir: &Path) -> anyhow::Result<()> {
    let models = data_dir.join("models");
    let catalog = Catalog::parse(CATALOG).context("the built-in catalog is invalid")?;
    match command {
        ModelsCommand::List => list(&catalog, &models).await,
        ModelsCommand::Pull { name, from, force } => {
            let source = pull::resolve(&catalog, &name, from.as_deref())?;
            if source.manifest_sha256.is_none() {
                eprintln!(
                    "note: {} is not pinned by the catalog; files are checked against the \
                     downloaded manifest only (integrity, not authenticity)",
                    source.base_url
                );
            }
            let options = PullOptions {
                force,
                ..PullOptions::default()
            };
            let progress = BarProgress::new();
            let pack = pull::pull(&pull::client(), &source, &models, &options, &progress).await;
            progress.bar.finish_and_clear();
            let pack = pack?;
            println!("installed {} in {}", pack.manifest.name, pack.dir.display());
            Ok(())
        }
        ModelsCommand::Import { dir, name, force } => {
            let pack = tokio::task::spawn_blocking(move || {
                import::import(&dir, &models, name.as_deref(), force)
            })
            .await
            .context("import panicked")??;
            println!(
                "imported {} into {}",
                pack.manifest.name,
                pack.dir.display()
            );
            Ok(())
        }
        ModelsCommand::Verify { name_or_dir } => {
            let given = PathBuf::from(&name_or_dir);
            let dir = if given.join("manifest.json").is_file() {
                given
            } else {
                models.join(&name_or_dir)
            };
            let pack = tokio::task::spawn_blocking(move || {
                let pack = ModelPack::open(&dir)?;
                pack.verify()?;
                Ok::<_, anyhow::Error>(pack)
            })
            .await
            .context("verify panicked")??;
            println!(
                "ok {} ({} files, sha256 match) in {}",
                pack.manifest.name,
                pack.manifest.files.len(),
                pack.dir.display()
            );
            Ok(())
        }
    }
}

async fn list(catalog: &Catalog, models: &Path) -> anyhow::Result<()> {
    let dir = models.to_path_buf();
    // Hashing every file takes a moment for big packs: off the runtime.
    let installed = tokio::task::spawn_blocking(move || installed_packs(&dir))
        .await
        .context("listing packs panicked")?;
    println!("installed in {}:", models.display());
    if installed.is_empty() {
        println!("  (none)");
    }
    for (name, pack) in &installed {
        match pack {
            Ok((pack, size, verified)) => println!(
                "  {name:<30} {:<8} {:>9}  {}  {}",
                pack.manifest.languages.join(","),
                human_size(*size),
                if *verified {
                    "verified"
                } else {
                    "CHECKSUM MISMATCH"
                },
                pack.manifest.description
            ),
            Err(error) => println!("  {name:<30} broken: {error}"),
        }
    }
    println!("\navailable (vidseek models pull NAME):");
    for entry in &catalog.packs {
        let status = if installed.iter().any(|(n, _)| n == &entry.name) {
            "installed"
        } else if entry.published_url().is_some() {
            "available"
        } else if entry.source.starts_with("build:") {
            "build locally"
        } else {
            "not published yet"
        };
        let size = entry
            .size_mb
            .map(|mb| format!("{mb:.0} MB"))
            .unwrap_or_default();
        println!(
            "  {:<30} {:<8} {:>9}  {:<18} {} [{}]",
            entry.name,
            entry.languages.join(","),
            size,
            status,
            entry.description,
            entry.licence
        );
    }
    Ok(())
}

type Installed = Result<(ModelPack, u64, bool), String>;

fn installed_packs(models: &Path) -> Vec<(String, Installed)> {
    let Ok(entries) = std::fs::read_dir(models) else {
        return Vec::new();
    };
    let mut packs: Vec<(String, Installed)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name != PARTIAL_DIR && !name.starts_with('.'))
        .map(|name| {
            let pack = ModelPack::open(&models.join(&name)).map_err(|e| e.to_string());
            let described = pack.map(|pack| {
                let size = std::iter::once("manifest.json")
                    .chain(pack.manifest.files.keys().map(String::as_str))
                    .filter_map(|f| std::fs::metadata(pack.file(f)).ok())
                    .map(|m| m.len())
                    .sum();
                let verified = pack.verify().is_ok();
                (pack, size, verified)
            });
            (name, described)
        })
        .collect();
    packs.sort_by(|a, b| a.0.cmp(&b.0));
    packs
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.0} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.0} KB", b as f64 / 1024.0),
    }
}

/// One progress bar, reused for each file of the pack.
struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    fn new() -> BarProgress {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        BarProgress { bar }
    }
}

impl PullProgress for BarProgress {
    fn file_started(&self, file: &str, total: Option<u64>, resumed_from: u64) {
        self.bar.reset();
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(resumed_from);
        let resumed = if resumed_from > 0 { " (resumed)" } else { "" };
        self.bar.set_message(format!("{file}{resumed}"));
    }

    fn advanced(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn file_finished(&self, file: &str) {
        self.bar.println(format!("  downloaded {file}"));
    }
}
