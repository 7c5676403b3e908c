//! `Origin` checks for the embedded server: a browser page may connect only from the
//! origin campeer serves or one listed in `access.allowed_origins`.

/// `text` as browsers send it in `Origin` (`scheme://host[:port]`, lowercase, default
/// port dropped), or why it is not one.
pub fn parse(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("scheme must be http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".into());
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err("an origin is scheme://host[:port] only".into());
    }
    Ok(url.origin().ascii_serialization())
}

/// Whether a browser's `origin` may connect: it equals the served origin (`https` or
/// `http` with the request's `Host`) or one of `allowed` (already normalized or not).
pub fn allowed(origin: &str, host: Option<&str>, tls: bool, allowed: &[String]) -> bool {
    let Ok(origin) = parse(origin) else {
        return false;
    };
    let scheme = if tls { "https" } else { "http" };
    let served = host.and_then(|h| parse(&format!("{scheme}://{h}")).ok());
    served.as_deref() == Some(origin.as_str())
        || allowed
            .iter()
            .filter_map(|a| parse(a).ok())
            .any(|a| a == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        assert_eq!(parse("HTTPS://Cam.Local:443").unwrap(), "https://cam.local");
        assert_eq!(
            parse("http://10.0.0.5:3000/").unwrap(),
            "http://10.0.0.5:3000"
        );
        assert!(parse("cam.local").is_err());
        assert!(parse("https://cam.local/page").is_err());
        assert!(parse("ftp://cam.local").is_err());
        assert!(parse("null").is_err());
    }

    #[test]
    fn the_served_origin_is_allowed() {
        assert!(allowed(
            "http://cam.local:3000",
            Some("cam.local:3000"),
            false,
            &[]
        ));
        assert!(allowed(
            "https://cam.local:3000",
            Some("CAM.local:3000"),
            true,
            &[]
        ));
    }

    #[test]
    fn other_origins_need_listing() {
        let listed = vec!["https://watch.example.org".to_owned()];
        assert!(!allowed(
            "https://evil.example",
            Some("cam.local:3000"),
            false,
            &listed
        ));
        assert!(!allowed(
            "https://cam.local:3000",
            Some("cam.local:3000"),
            false,
            &[]
        ));
        assert!(!allowed("null", Some("cam.local:3000"), false, &listed));
        assert!(allowed("https://watch.example.org", None, false, &listed));
    }
}
