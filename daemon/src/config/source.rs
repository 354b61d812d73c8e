//! Finding the config file (SPEC §2) and parsing it with figment's JSON, TOML or YAML provider.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format as _, Json, Toml, Yaml};
use serde_json::Value;

use super::env::{Env, SERVICE_CONFIG_FILE_NAME, SERVICE_CONFIG_PATH};
use super::error::ConfigError;

/// The file read when neither `--config` nor the `SERVICE_CONFIG_*` variables say otherwise.
pub const DEFAULT_CONFIG_FILE: &str = "config/auth0-client.json";

/// Where the config file is, and how that was decided (for the "does not exist" message).
pub(crate) fn locate(
    cli: Option<&Path>,
    env: &Env,
) -> Result<(PathBuf, &'static str), ConfigError> {
    if let Some(path) = cli {
        return Ok((path.to_path_buf(), "from --config"));
    }
    match (
        env.get(SERVICE_CONFIG_PATH),
        env.get(SERVICE_CONFIG_FILE_NAME),
    ) {
        (Some(dir), Some(name)) => {
            // The upstream variable is a base name without extension; a name that already ends
            // in a supported extension is taken as is rather than read as `config.toml.json`.
            let file = if Format::of(Path::new(name)).is_some() {
                name.to_owned()
            } else {
                format!("{name}.json")
            };
            Ok((
                Path::new(dir).join(file),
                "from SERVICE_CONFIG_PATH and SERVICE_CONFIG_FILE_NAME",
            ))
        }
        (Some(_), None) => Err(ConfigError::IncompleteLocation {
            set: SERVICE_CONFIG_PATH,
            unset: SERVICE_CONFIG_FILE_NAME,
        }),
        (None, Some(_)) => Err(ConfigError::IncompleteLocation {
            set: SERVICE_CONFIG_FILE_NAME,
            unset: SERVICE_CONFIG_PATH,
        }),
        (None, None) => Ok((PathBuf::from(DEFAULT_CONFIG_FILE), "the default")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Toml,
    Yaml,
}

impl Format {
    /// By extension, ignoring case.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Self::Json),
            "toml" => Some(Self::Toml),
            "yaml" | "yml" => Some(Self::Yaml),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::Toml => "TOML",
            Self::Yaml => "YAML",
        }
    }
}

/// Reads and parses the file at `path` into a JSON document.
pub(crate) fn read(path: &Path, origin: &'static str) -> Result<Value, ConfigError> {
    let format = Format::of(path).ok_or_else(|| ConfigError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            // Absolute, so that a relative default names the working directory it was looked for in.
            ConfigError::NotFound {
                path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
                origin,
            }
        } else {
            ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    parse(&text, format).map_err(|detail| ConfigError::Parse {
        path: path.to_path_buf(),
        format: format.name(),
        detail,
    })
}

/// Parses `text`; the error is the parser's message with its line and column, on one line.
pub(crate) fn parse(text: &str, format: Format) -> Result<Value, String> {
    let figment = match format {
        Format::Json => Figment::from(Json::string(text)),
        Format::Toml => Figment::from(Toml::string(text)),
        Format::Yaml => Figment::from(Yaml::string(text)),
    };
    figment.extract::<Value>().map_err(|err| match err.kind {
        figment::error::Kind::Message(message) => one_line(&message),
        other => other.to_string(),
    })
}

/// The TOML parser's message spans several lines with a source excerpt; keep "what, at line L
/// column C" so that the whole error fits one log line.
fn one_line(message: &str) -> String {
    let Some(header) = message.lines().next() else {
        return message.to_owned();
    };
    let Some(position) = header.strip_prefix("TOML parse error at ") else {
        return message.to_owned();
    };
    let is_excerpt = |line: &str| {
        let trimmed = line.trim_start();
        trimmed.starts_with('|')
            || trimmed
                .split_once(" |")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let what: Vec<&str> = message
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty() && !is_excerpt(line))
        .collect();
    format!(
        "{} at {}",
        what.join(", "),
        position.replace(", column", " column")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_order() {
        let env = Env::from_pairs([
            ("SERVICE_CONFIG_PATH", "/configs"),
            ("SERVICE_CONFIG_FILE_NAME", "config"),
        ]);
        assert_eq!(
            locate(Some(Path::new("x.toml")), &env).expect("cli").0,
            PathBuf::from("x.toml")
        );
        assert_eq!(
            locate(None, &env).expect("env").0,
            PathBuf::from("/configs/config.json")
        );
        let env = Env::from_pairs([
            ("SERVICE_CONFIG_PATH", "/configs"),
            ("SERVICE_CONFIG_FILE_NAME", "auth0.yaml"),
        ]);
        assert_eq!(
            locate(None, &env).expect("env").0,
            PathBuf::from("/configs/auth0.yaml")
        );
        assert_eq!(
            locate(None, &Env::default()).expect("default").0,
            PathBuf::from("config/auth0-client.json")
        );
        let env = Env::from_pairs([
            ("SERVICE_CONFIG_PATH", "/configs"),
            ("SERVICE_CONFIG_FILE_NAME", ""),
        ]);
        let err = locate(None, &env).expect_err("half set");
        assert!(
            err.to_string().contains("SERVICE_CONFIG_FILE_NAME is not"),
            "{err}"
        );
        let env = Env::from_pairs([("SERVICE_CONFIG_FILE_NAME", "config")]);
        assert!(locate(None, &env).is_err());
    }

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::of(Path::new("a.JSON")), Some(Format::Json));
        assert_eq!(Format::of(Path::new("a.toml")), Some(Format::Toml));
        assert_eq!(Format::of(Path::new("a.yml")), Some(Format::Yaml));
        assert_eq!(Format::of(Path::new("a.yaml")), Some(Format::Yaml));
        assert_eq!(Format::of(Path::new("a.ini")), None);
        assert_eq!(Format::of(Path::new("json")), None);
    }

    #[test]
    fn malformed_files_report_line_and_column() {
        let json = parse(
            "{\n  \"clients\": {},\n  \"defaultClient\" \"web\"\n}",
            Format::Json,
        )
        .expect_err("bad json");
        assert!(json.contains("line 3 column 19"), "{json}");
        let toml = parse("[clients.web]\nauth0Url = = 1\n", Format::Toml).expect_err("bad toml");
        assert!(toml.contains("line 2 column 12"), "{toml}");
        assert!(!toml.contains('\n'), "{toml}");
        let yaml = parse("clients:\n  web: [1, 2\ndefaultClient: web\n", Format::Yaml)
            .expect_err("bad yaml");
        assert!(yaml.contains("line 3 column"), "{yaml}");
    }

    #[test]
    fn the_three_formats_give_the_same_document() {
        let json = parse(
            r#"{"server": {"bind": "::1", "insecureCookies": true}, "n": [1, 2]}"#,
            Format::Json,
        );
        let toml = parse(
            "n = [1, 2]\n[server]\nbind = \"::1\"\ninsecureCookies = true\n",
            Format::Toml,
        );
        let yaml = parse(
            "server:\n  bind: \"::1\"\n  insecureCookies: true\nn: [1, 2]\n",
            Format::Yaml,
        );
        assert_eq!(json, toml);
        assert_eq!(json, yaml);
    }

    #[test]
    fn read_distinguishes_missing_unreadable_and_unknown_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.json");
        assert!(matches!(
            read(&missing, "the default"),
            Err(ConfigError::NotFound { .. })
        ));
        let ini = dir.path().join("a.ini");
        std::fs::write(&ini, "x").expect("write");
        assert!(matches!(
            read(&ini, "from --config"),
            Err(ConfigError::UnknownFormat { .. })
        ));
        let as_dir = dir.path().join("d.json");
        std::fs::create_dir(&as_dir).expect("mkdir");
        assert!(matches!(
            read(&as_dir, "from --config"),
            Err(ConfigError::Read { .. })
        ));
    }
}
