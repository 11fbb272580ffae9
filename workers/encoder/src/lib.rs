//! The encoder role: text and image towers of a model pack behind the NATS
//! services `vidseek.v1.encode.text` and `vidseek.v1.encode.image` (queue
//! groups, so running more encoder processes adds capacity). Each tower's
//! ONNX session runs on its own thread behind a micro-batching queue.

mod batcher;
mod clip_bpe;
mod image;
pub mod modelpack;
pub mod runtime;
mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::service::ServiceExt;
use vidseek_protocol::encode::{
    EncodeImageRequest, EncodeImageResponse, EncodeTextRequest, EncodeTextResponse,
};
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::query::QueryTranslation;
use vidseek_protocol::subjects;

use crate::modelpack::{ImageEncoder, Manifest, ModelPack};
use batcher::{BatchError, Batcher};
pub use image::Pixels;
pub use vidseek_protocol::encode::l2_normalise;
use vidseek_text::language;
use vidseek_text::translate::Translator;

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error(transparent)]
    Pack(#[from] crate::modelpack::PackError),
    #[error("{0}")]
    Model(String),
    #[error("cannot start the encoder service: {0}")]
    Service(async_nats::Error),
}

#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub pack_dir: PathBuf,
    /// The ONNX Runtime shared library.
    pub ort_library: PathBuf,
    /// Intra-op threads per session.
    pub threads: usize,
    /// Largest number of texts or images in one model call.
    pub max_batch: usize,
    /// How long a model call waits after its first request for others to
    /// share it (zero: only those already queued).
    pub batch_window: Duration,
    /// Requests that may wait per tower before callers get `overloaded`.
    pub queue_depth: usize,
}

/// Both towers of a loaded pack.
#[derive(Clone)]
pub struct Encoder {
    manifest: Arc<Manifest>,
    /// The pack's query translators, by source language.
    translators: Arc<BTreeMap<String, Translator>>,
    text: Batcher<String, Vec<f32>>,
    image: Batcher<Pixels, vidseek_protocol::encode::ImageVectors>,
}

impl Encoder {
    /// Loads the pack's models; fails with a message naming what is missing.
    pub fn load(config: &EncoderConfig) -> Result<Encoder, EncoderError> {
        let pack = ModelPack::open(&config.pack_dir)?;
        let environment = runtime::environment(&config.ort_library).map_err(EncoderError::Model)?;
        let mut text_model = text::TextModel::load(&pack, environment, config.threads)
            .map_err(EncoderError::Model)?;
        let mut image_model = image::ImageModel::load(&pack, environment, config.threads)
            .map_err(EncoderError::Model)?;
        let translators = load_translators(&pack).map_err(EncoderError::Model)?;
        Ok(Encoder {
            manifest: Arc::new(pack.manifest),
            translators: Arc::new(translators),
            text: Batcher::spawn(
                "text",
                config.queue_depth,
                config.max_batch,
                config.batch_window,
                move |texts| text_model.encode(texts),
            ),
            image: Batcher::spawn(
                "image",
                config.queue_depth,
                config.max_batch,
                config.batch_window,
                move |pixels| image_model.encode(pixels),
            ),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub async fn encode_text(
        &self,
        request: EncodeTextRequest,
    ) -> Result<EncodeTextResponse, ErrorBody> {
        request.validate()?;
        let mut unsupported_language = Vec::with_capacity(request.texts.len());
        let mut translations = Vec::with_capacity(request.texts.len());
        let mut texts = Vec::with_capacity(request.texts.len());
        for text in request.texts {
            let language = language::detect(&text);
            unsupported_language
                .push((!self.manifest.supports_language(language)).then(|| language.to_string()));
            let translated = self
                .translators
                .get(language)
                .and_then(|translator| translator.translate(&text));
            texts.push(translated.clone().unwrap_or(text));
            translations.push(translated.map(|text| QueryTranslation {
                language: language.to_string(),
                text,
            }));
        }
        let vectors = self.text.submit(texts).await.map_err(batch_error)?;
        Ok(EncodeTextResponse {
            vectors,
            unsupported_language,
            translations,
            text_visual: self.manifest.calibration.text_visual,
            text_text: self.manifest.calibration.text_text,
            text_ocr: self.manifest.calibration.text_ocr,
        })
    }

    pub async fn encode_images(
        &self,
        request: EncodeImageRequest,
    ) -> Result<EncodeImageResponse, ErrorBody> {
        request.validate()?;
        let spec: ImageEncoder = self.manifest.image.clone();
        // Decoding is CPU work that parallelises; keep it off both the async
        // runtime and the model thread.
        let pixels = tokio::task::spawn_blocking(move || {
            request
                .images
                .iter()
                .enumerate()
                .map(|(i, bytes)| {
                    image::preprocess(bytes, &spec)
                        .map_err(|(code, e)| ErrorBody::new(code, format!("image {i}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| {
            ErrorBody::new(ErrorCode::Internal, format!("image decoding panicked: {e}"))
        })??;
        let vectors = self.image.submit(pixels).await.map_err(batch_error)?;
        Ok(EncodeImageResponse {
            vectors,
            image_image: self.manifest.calibration.image_image,
        })
    }
}

/// The pack's translation tables. Only Chinese has a segmenter, so a table
/// for another language is refused rather than silently ignored.
fn load_translators(pack: &ModelPack) -> Result<BTreeMap<String, Translator>, String> {
    let mut translators = BTreeMap::new();
    for (language, translation) in &pack.manifest.translations {
        if language != "zh" {
            return Err(format!(
                "translations.{language}: only Chinese (zh) query translation is supported"
            ));
        }
        let translator = Translator::load(&pack.file(&translation.table))?;
        translators.insert(language.clone(), translator);
    }
    Ok(translators)
}

fn batch_error(error: BatchError) -> ErrorBody {
    let code = match error {
        BatchError::Overloaded(_) => ErrorCode::Overloaded,
        BatchError::Stopped(_) => ErrorCode::Unavailable,
        BatchError::Failed(_) => ErrorCode::Internal,
    };
    ErrorBody::new(code, error.to_string())
}

/// Serves both encoders on NATS until `shutdown` fires.
pub async fn serve(
    nats: async_nats::Client,
    encoder: Encoder,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), EncoderError> {
    let service = nats
        .service_builder()
        .description(format!(
            "vidseek encoders, model pack {}",
            encoder.manifest.name
        ))
        // Read by `vidseek status`: which pack each instance serves.
        .metadata(std::collections::HashMap::from([(
            "model_pack".to_string(),
            encoder.manifest.name.clone(),
        )]))
        .start(subjects::SERVICE_ENCODER, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(EncoderError::Service)?;
    let text = service
        .endpoint_builder()
        .name("text")
        .add(subjects::ENCODE_TEXT)
        .await
        .map_err(EncoderError::Service)?;
    let image = service
        .endpoint_builder()
        .name("image")
        .add(subjects::ENCODE_IMAGE)
        .await
        .map_err(EncoderError::Service)?;
    let text_encoder = encoder.clone();
    let serve_text = vidseek_bus::service::serve(text, move |request: EncodeTextRequest| {
        let encoder = text_encoder.clone();
        async move { encoder.encode_text(request).await }
    });
    let serve_image = vidseek_bus::service::serve(image, move |request: EncodeImageRequest| {
        let encoder = encoder.clone();
        async move { encoder.encode_images(request).await }
    });
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = futures::future::join(serve_text, serve_image) => {}
    }
    let _ = service.stop().await;
    Ok(())
}
