//! A Kubernetes Secret manifest (`kind: Secret`) as a file keyctl reads and edits: its name
//! and namespace, and its keys in `stringData` (plain text) or `data` (base64), `stringData`
//! winning where both hold a key, as the API server merges them. Edits go through the one
//! YAML editor ([`crate::compose::YamlDoc`]).

use std::path::{Path, PathBuf};

use base64ct::{Base64, Encoding};

use crate::compose::YamlDoc;
use crate::error::{Error, Result};

/// A loaded Secret manifest.
#[derive(Debug, Clone)]
pub(crate) struct SecretFile {
    /// Its path.
    pub(crate) path: PathBuf,
    /// The document.
    pub(crate) doc: YamlDoc,
    /// `metadata.name`.
    pub(crate) name: String,
    /// `metadata.namespace`, when the manifest names one.
    pub(crate) namespace: Option<String>,
}

impl SecretFile {
    /// Reads the manifest `text` of `path`.
    ///
    /// # Errors
    /// Invalid YAML, not a `Secret`, no `metadata.name`, or a `data` value that is not
    /// base64 of UTF-8 text (exit 2, with the line).
    pub(crate) fn parse(path: &Path, text: &str) -> Result<SecretFile> {
        let at = |line: Option<usize>| match line {
            Some(l) => format!("{}:{l}", path.display()),
            None => path.display().to_string(),
        };
        let doc = YamlDoc::parse(text).map_err(|e| {
            let message = if e.message.contains("second YAML document") {
                "holds more than one YAML document; give keyctl a file with the Secret alone (kubectl get secret NAME -o yaml > FILE)".to_owned()
            } else {
                e.message
            };
            Error::bad(at(e.line), message)
        })?;
        let kind = doc.scalar(&["kind"]).map(|(k, _)| k);
        if kind.as_deref() != Some("Secret") {
            return Err(Error::bad(
                at(doc.line(&["kind"])),
                "is not a Kubernetes Secret manifest (kind: Secret); give the manifest of the Secret your values file's secretRef names",
            ));
        }
        let Some((name, _)) = doc
            .scalar(&["metadata", "name"])
            .filter(|(n, _)| !n.is_empty())
        else {
            return Err(Error::bad(at(None), "the Secret has no metadata.name"));
        };
        let secret = SecretFile {
            path: path.to_path_buf(),
            namespace: doc
                .scalar(&["metadata", "namespace"])
                .map(|(n, _)| n)
                .filter(|n| !n.is_empty()),
            name,
            doc,
        };
        for (key, _, line) in secret.doc.entries(&["data"]) {
            secret
                .decoded(&key)
                .map_err(|m| Error::bad(at(Some(line)), m))?;
        }
        Ok(secret)
    }

    fn decoded(&self, key: &str) -> std::result::Result<Option<String>, String> {
        let Some((raw, _)) = self.doc.scalar(&["data", key]) else {
            return Ok(None);
        };
        let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes =
            Base64::decode_vec(&compact).map_err(|_| format!("data.{key} is not base64"))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("data.{key} is not UTF-8 text once decoded"))
    }

    /// The value of `key` (`stringData` first, then `data` decoded) and its line.
    #[must_use]
    pub(crate) fn get(&self, key: &str) -> Option<(String, usize)> {
        if let Some(found) = self.doc.scalar(&["stringData", key]) {
            return Some(found);
        }
        let line = self.doc.line(&["data", key])?;
        self.decoded(key).ok().flatten().map(|v| (v, line))
    }

    /// The manifest's text with `key` set to `value`: where the key is (`stringData`, or
    /// `data` as base64), else in `stringData` when the manifest has it, else in `data`.
    ///
    /// # Errors
    /// The YAML editor refuses (exit 2, naming the file).
    pub(crate) fn set(&self, key: &str, value: &str) -> Result<String> {
        let in_string = self.doc.has(&["stringData", key]);
        let in_data = self.doc.has(&["data", key]);
        let use_data =
            !in_string && (in_data || !self.doc.has(&["stringData"]) && self.doc.has(&["data"]));
        let edit = if use_data {
            self.doc
                .set(&["data", key], &Base64::encode_string(value.as_bytes()))
        } else {
            self.doc.set(&["stringData", key], value)
        };
        edit.map_err(|e| {
            Error::bad(
                match e.line {
                    Some(l) => format!("{}:{l}", self.path.display()),
                    None => self.path.display().to_string(),
                },
                e.message,
            )
        })
    }
}
