//! Which file names in a config directory are config files, and which are editor or tool debris.

/// Whether `name` (a bare file name, no directory) is a config file hotconf watches.
///
/// Watched: `*.yaml` and `*.yml`. Ignored even with a YAML ending: dotfiles (`.env`, emacs locks
/// `.#x.yaml`, NFS silly-renames `.nfs…`, rsync's `.x.yaml.AbC123`, Kubernetes' `..data`), and the
/// temporary or backup names editors and tools leave behind (`*.tmp`, `*.swp`, `*.swx`, `*~`,
/// `#x.yaml#`, vim's `4913`, JetBrains `___jb_tmp___`/`___jb_old___`, `sed -i`'s `sedXXXXXX`,
/// `.ansible_tmp…`).
pub fn is_config_file_name(name: &str) -> bool {
    if name.starts_with('.') || name.starts_with('#') || name.ends_with('~') || name.ends_with('#') {
        return false;
    }
    if name.contains("___jb_tmp___") || name.contains("___jb_old___") || name == "4913" {
        return false;
    }
    if is_sed_temp(name) {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    let Some(stem) = lower.strip_suffix(".yaml").or_else(|| lower.strip_suffix(".yml")) else {
        return false;
    };
    !stem.is_empty() && !stem.ends_with(".tmp") && !stem.ends_with(".bak")
}

/// `sed -i` writes `sedXXXXXX`: `sed` and six alphanumerics, no extension.
fn is_sed_temp(name: &str) -> bool {
    name.len() == 9 && name.starts_with("sed") && name[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::is_config_file_name;

    #[test]
    fn names() {
        let watched = ["a.yaml", "a.yml", "A.YAML", "rate_limits.yaml", "x.y.yaml"];
        let ignored = [
            ".env",
            "README.md",
            "a.json",
            ".a.yaml",
            ".#a.yaml",
            "#a.yaml#",
            "a.yaml~",
            "a.yaml.swp",
            "a.yaml.swx",
            "a.yaml.tmp",
            "a.tmp.yaml",
            "a.bak.yaml",
            "4913",
            "a.yaml___jb_tmp___",
            "a.yaml___jb_old___",
            ".nfs000000000001",
            "sedAbC123",
            ".ansible_tmp1.yaml",
            ".a.yaml.AbC123",
            "..data",
            ".yaml",
            "yaml",
            "a.yaml.bak",
        ];
        for name in watched {
            assert!(is_config_file_name(name), "{name} should be watched");
        }
        for name in ignored {
            assert!(!is_config_file_name(name), "{name} should be ignored");
        }
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn yaml_files_are_config_files_and_editor_debris_is_not() {
        use crate::source::names::is_config_file_name;
        assert!(is_config_file_name("rate_limits.yaml"));
        assert!(is_config_file_name("providers.yml"));
        assert!(!is_config_file_name(".env"));
        assert!(!is_config_file_name("rate_limits.yaml.swp"));
        assert!(!is_config_file_name("rate_limits.yaml~"));
        assert!(!is_config_file_name(".#rate_limits.yaml"));
    }
}
