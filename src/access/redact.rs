//! Secrets out of text meant for people: logs and `check-config`.

use super::REDACTED;

/// `url` with its userinfo (`user:password@`) replaced by `<redacted>`; text that is not
/// a URL is returned whole only if it has no `@` that could hide credentials.
pub fn url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.username().is_empty() && parsed.password().is_none() => url.to_owned(),
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = &parsed[url::Position::AfterPort..];
            format!("{}://{REDACTED}@{host}{port}{rest}", parsed.scheme())
        }
        Err(_) if url.contains('@') => REDACTED.to_owned(),
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_redacted_and_the_rest_kept() {
        assert_eq!(
            url("https://cam:s3cret@relay.example.org:3000/path?q=1"),
            "https://<redacted>@relay.example.org:3000/path?q=1"
        );
        assert_eq!(url("wss://only-user@relay/"), "wss://<redacted>@relay/");
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        assert_eq!(url("http://127.0.0.1:3000"), "http://127.0.0.1:3000");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn unparsable_text_with_an_at_sign_is_redacted_whole() {
        assert_eq!(url("http://cam:s3cret@[::1"), REDACTED);
    }
}
