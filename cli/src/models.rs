//! `vidseek models ...`: list, pull, import and verify model packs in
//! `{data_dir}/models/`, and embed texts and images with one. The work is in
//! `vidseek_encoder::modelpack::{pull, import}` and
//! `vidseek_encoder`; this module parses arguments and prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use vidseek_encoder::modelpack::pull::{self, Catalog, PARTIAL_DIR, PullOptions, PullProgress};
use vidseek_encoder::modelpack::{ModelPack, import};
use vidseek_encoder::{Encoder, EncoderConfig, runtime};
use vidseek_protocol::encode::{EncodeImageRequest, EncodeTextRequest};
use vidseek_protocol::error::ErrorBody;

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
    /// Embed texts and images with a pack's encoders, exactly as the
    /// encoder service does, and print the text-image cosines (or, with
    /// --json, the vectors).
    Embed {
        /// An installed pack's name, or a pack directory.
        #[arg(long, default_value = "default")]
        pack: String,
        /// A text to embed (repeatable).
        #[arg(long = "text", value_name = "TEXT")]
        texts: Vec<String>,
        /// An image file to embed: JPEG, PNG, WebP, GIF or BMP (repeatable).
        #[arg(long = "image", value_name = "FILE")]
        images: Vec<PathBuf>,
        /// Print {"pack", "dim", "texts": [{"text", "vector"}], "images":
        /// [{"file", "text_space", "image_space"}]} as JSON.
        #[arg(long)]
        json: bool,
        /// ONNX Runtime shared library (default: found in DATA_DIR/python).
        #[arg(long, env = "ORT_DYLIB_PATH")]
        ort_library: Option<PathBuf>,
        /// Intra-op threads per ONNX session (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
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
            let dir = pack_dir(&models, &name_or_dir);
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
        ModelsCommand::Embed {
            pack,
            texts,
            images,
            json,
            ort_library,
            threads,
        } => {
            let ort_library = ort_library
                .or_else(|| runtime::find_library(data_dir))
                .context(
                    "no ONNX Runtime library: run deploy/setup.sh, or set ORT_DYLIB_PATH \
                     (or --ort-library)",
                )?;
            let config = EncoderConfig {
                pack_dir: pack_dir(&models, &pack),
                ort_library,
                threads: threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                max_batch: 32,
                // One command-line call: nothing else to wait for.
                batch_window: std::time::Duration::ZERO,
                queue_depth: 256,
            };
            embed(&config, texts, images, json).await
        }
    }
}

/// An installed pack's directory, or the given directory if it holds a pack.
fn pack_dir(models: &Path, name_or_dir: &str) -> PathBuf {
    let given = PathBuf::from(name_or_dir);
    if given.join("manifest.json").is_file() {
        given
    } else {
        models.join(name_or_dir)
    }
}

async fn embed(
    config: &EncoderConfig,
    texts: Vec<String>,
    files: Vec<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    if texts.is_empty() && files.is_empty() {
        anyhow::bail!("nothing to embed: give --text and/or --image");
    }
    let mut images = Vec::with_capacity(files.len());
    for file in &files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        images.push(bytes.into());
    }
    let loading = config.clone();
    let encoder = tokio::task::spawn_blocking(move || Encoder::load(&loading))
        .await
        .context("loading the pack panicked")??;
    let fail = |e: ErrorBody| anyhow::anyhow!("{e}");
    let text_vectors = if texts.is_empty() {
        Vec::new()
    } else {
        let request = EncodeTextRequest {
            texts: texts.clone(),
        };
        encoder.encode_text(request).await.map_err(fail)?.vectors
    };
    let image_vectors = if images.is_empty() {
        Vec::new()
    } else {
        let request = EncodeImageRequest { images };
        encoder.encode_images(request).await.map_err(fail)?.vectors
    };
    let manifest = encoder.manifest();
    if json {
        let output = serde_json::json!({
            "pack": manifest.name,
            "dim": manifest.text.dim,
            "texts": texts.iter().zip(&text_vectors).map(|(text, vector)| {
                serde_json::json!({"text": text, "vector": vector})
            }).collect::<Vec<_>>(),
            "images": files.iter().zip(&image_vectors).map(|(file, vectors)| {
                serde_json::json!({
                    "file": file,
                    "text_space": vectors.text_space,
                    "image_space": vectors.image_space,
                })
            }).collect::<Vec<_>>(),
        });
        println!("{output}");
        return Ok(());
    }
    println!(
        "pack {} ({} dimensions, {} texts, {} images)",
        manifest.name,
        manifest.text.dim,
        text_vectors.len(),
        image_vectors.len()
    );
    if image_vectors.is_empty() {
        for (i, text) in texts.iter().enumerate() {
            println!("t{i}  {text}");
        }
        return Ok(());
    }
    // Rows: texts; columns: images. The cosines a text search ranks by.
    for (i, file) in files.iter().enumerate() {
        println!("i{i}  {}", file.display());
    }
    let header: String = (0..files.len())
        .map(|i| format!("{:>8}", format!("i{i}")))
        .collect();
    println!("{:<40}{header}", "cosine (text x image)");
    for (text, vector) in texts.iter().zip(&text_vectors) {
        let row: String = image_vectors
            .iter()
            .map(|image| format!("{:>8.4}", dot(vector, &image.text_space)))
            .collect();
        println!("{}{row}", fit(text, 40));
    }
    Ok(())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `text` cut and padded to `columns` terminal columns (CJK characters and
/// emoji take two), so the cosine table lines up for Chinese queries too.
fn fit(text: &str, columns: usize) -> String {
    let width = |c: char| match c as u32 {
        0x1100..=0x115F
        | 0x2E80..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1FAFF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    };
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + width(c) > columns - 2 {
            out.push('…');
            used += 1;
            break;
        }
        out.push(c);
        used += width(c);
    }
    out.extend(std::iter::repeat_n(' ', columns - used));
    out
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

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_counts_wide_characters_twice() {
        assert_eq!(fit("a cat", 8), "a cat   ");
        assert_eq!(fit("一只猫", 8), "一只猫  ");
        assert_eq!(fit("一只猫在沙发上", 8), "一只猫… ");
        assert_eq!(fit("abcdefghij", 8), "abcdef… ");
    }
}
