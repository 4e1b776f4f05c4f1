//! The [Build] table: Dockerfile or image source.

use super::*;

pub(super) fn resolve_build(cx: &mut Ctx<'_>, b: &raw::Build) -> BuildSource {
    let kind = match (&b.kind, &b.kind_lower) {
        (Some(upper), Some(lower)) => {
            cx.issues.push(
                lower.span.clone(),
                "Build.type",
                E::ConflictingKeys,
                "both `Type` and `type` are set; they are the same key",
                "keep `Type` and remove `type`",
            );
            Some(upper)
        }
        (a, b) => a.as_ref().or(b.as_ref()),
    };
    if let Some(k) = kind {
        let path = if b.kind.is_some() {
            "Build.Type"
        } else {
            "Build.type"
        };
        cx.enum_value(k, path, &[defaults::BUILD_TYPE]);
    }
    match (&b.image, &b.dockerfile_path) {
        (Some(img), Some(df)) => {
            cx.issues.push(
                df.span.clone(),
                "Build.DockerfilePath",
                E::ConflictingKeys,
                "both Image and DockerfilePath are set: loco either builds or deploys an image",
                "remove DockerfilePath to deploy the image, or remove Image to build",
            );
            BuildSource::Image {
                reference: img.value.clone(),
            }
        }
        (Some(img), None) => {
            if !syntax::is_image_reference(&img.value) {
                cx.issues.push(
                    img.span.clone(),
                    "Build.Image",
                    E::InvalidImage,
                    format!("{:?} is not a container image reference", img.value),
                    "write registry/repository:tag in lowercase, e.g. \"ghcr.io/org/app:1.2\"",
                );
            }
            BuildSource::Image {
                reference: img.value.clone(),
            }
        }
        (None, Some(df)) => {
            if df.value.trim().is_empty() || df.value.contains('\0') {
                cx.issues.push(
                    df.span.clone(),
                    "Build.DockerfilePath",
                    E::InvalidPath,
                    "the Dockerfile path is empty",
                    "write the path relative to loco.toml, e.g. \"Dockerfile\", or remove the key",
                );
            }
            BuildSource::Dockerfile {
                path: df.value.clone(),
            }
        }
        (None, None) => BuildSource::Dockerfile {
            path: defaults::DOCKERFILE.to_owned(),
        },
    }
}
