//! Where campeer keeps what it makes once (the token, a self-signed certificate):
//! systemd's `StateDirectory=`, else the system location when campeer may write there,
//! else the user's XDG state directory.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The system location, used when running as a user who may write it (root, packaging).
pub const SYSTEM: &str = "/var/lib/campeer";

#[derive(Debug, thiserror::Error)]
#[error(
    "access.state_dir is not set and none of $STATE_DIRECTORY, {SYSTEM} (writable), \
     $XDG_STATE_HOME or $HOME is available: set access.state_dir"
)]
pub struct NoStateDir;

/// `configured`, or the first of: `$STATE_DIRECTORY` (its first entry), [`SYSTEM`] if
/// `writable`, `$XDG_STATE_HOME/campeer`, `$HOME/.local/state/campeer`. The environment
/// and the write check are passed in so the choice can be tested.
pub fn choose(
    configured: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
    writable: impl Fn(&Path) -> bool,
) -> Result<PathBuf, NoStateDir> {
    if let Some(dir) = configured {
        return Ok(dir.to_path_buf());
    }
    // systemd joins several StateDirectory= entries with ':'; the first is campeer's.
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(dir) = env("STATE_DIRECTORY")
        .and_then(|v| v.to_string_lossy().split(':').next().map(OsString::from))
        .and_then(absolute)
    {
        return Ok(dir);
    }
    if writable(Path::new(SYSTEM)) {
        return Ok(PathBuf::from(SYSTEM));
    }
    if let Some(xdg) = env("XDG_STATE_HOME").and_then(absolute) {
        return Ok(xdg.join("campeer"));
    }
    env("HOME")
        .and_then(absolute)
        .map(|home| home.join(".local/state/campeer"))
        .ok_or(NoStateDir)
}

/// [`choose`] with the process environment and the file system.
pub fn resolve(configured: Option<&Path>) -> Result<PathBuf, NoStateDir> {
    choose(configured, |k| std::env::var_os(k), may_write)
}

/// Writes `contents` to `path` for this user's eyes only (mode 0600, in a directory made
/// 0700 if missing): whole under a temporary name, synced, then renamed, so a crash never
/// leaves half a secret behind.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            // A file left by an earlier crash keeps its mode; narrow it regardless.
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(contents)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether this process may write `dir`, or create it in its nearest existing parent.
fn may_write(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Some(existing) = dir.ancestors().find(|p| p.exists()) else {
        return false;
    };
    let Ok(c) = std::ffi::CString::new(existing.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn systemd_state_directory_comes_first() {
        let vars = [("STATE_DIRECTORY", "/var/lib/private/campeer:/var/lib/other")];
        assert_eq!(
            choose(None, env(&vars), |_| true).unwrap(),
            Path::new("/var/lib/private/campeer")
        );
    }

    #[test]
    fn configured_directory_wins() {
        let vars = [("STATE_DIRECTORY", "/var/lib/campeer")];
        assert_eq!(
            choose(Some(Path::new("/srv/cam")), env(&vars), |_| true).unwrap(),
            Path::new("/srv/cam")
        );
    }

    #[test]
    fn system_location_when_writable_else_the_users() {
        let vars = [("HOME", "/home/pi"), ("XDG_STATE_HOME", "/home/pi/.state")];
        assert_eq!(
            choose(None, env(&vars), |_| true).unwrap(),
            Path::new(SYSTEM)
        );
        assert_eq!(
            choose(None, env(&vars), |_| false).unwrap(),
            Path::new("/home/pi/.state/campeer")
        );
        assert_eq!(
            choose(None, env(&vars[..1]), |_| false).unwrap(),
            Path::new("/home/pi/.local/state/campeer")
        );
    }

    #[test]
    fn relative_variables_are_ignored_and_nothing_left_is_an_error() {
        let vars = [("XDG_STATE_HOME", "rel"), ("HOME", "")];
        let e = choose(None, env(&vars), |_| false).unwrap_err().to_string();
        assert!(e.contains("access.state_dir"), "{e}");
    }

    #[test]
    fn private_files_are_0600_in_a_0700_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/secret");
        write_private(&path, b"x").unwrap();
        write_private(&path, b"y").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"y");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(
            std::fs::read_dir(dir.path().join("new")).unwrap().count(),
            1
        );
    }

    #[test]
    fn write_check_sees_the_nearest_existing_parent() {
        let dir = tempfile::tempdir().unwrap();
        assert!(may_write(&dir.path().join("not/yet/made")));
    }
}
