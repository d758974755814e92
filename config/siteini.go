package config

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// SiteINI lists the php.ini directives a site.toml may set in
// [php] ini_overrides. Everything else (open_basedir, disable_functions,
// ffi.enable, allow_url_include, extension, sendmail_path, error_log,
// opcache.*, ...) grants power over the node or other tenants and is the
// operator's, in ephpm.toml only.
//
// In the shared php-fpm pool a PHP_ADMIN_VALUE stays in the worker for
// the rest of its life, so every request carries every key of this list:
// the site's value or the node default. The list is therefore also the
// complete set of settings that can differ between sites.
var SiteINI = []string{
	"arg_separator.output",
	"auto_append_file",
	"auto_prepend_file",
	"date.timezone",
	"default_charset",
	"default_socket_timeout",
	"display_errors",
	"display_startup_errors",
	"error_reporting",
	"file_uploads",
	"html_errors",
	"log_errors",
	"max_file_uploads",
	"max_input_nesting_level",
	"max_input_time",
	"max_input_vars",
	"mbstring.language",
	"output_buffering",
	"pcre.backtrack_limit",
	"pcre.recursion_limit",
	"post_max_size",
	"precision",
	"serialize_precision",
	"session.cache_expire",
	"session.cache_limiter",
	"session.cookie_httponly",
	"session.cookie_lifetime",
	"session.cookie_path",
	"session.cookie_samesite",
	"session.cookie_secure",
	"session.gc_maxlifetime",
	"session.name",
	"session.use_strict_mode",
	"short_open_tag",
	"upload_max_filesize",
	"zlib.output_compression",
	"zlib.output_compression_level",
}

// SiteINIAllowed reports whether a site.toml may set the directive.
func SiteINIAllowed(key string) bool {
	_, ok := slices.BinarySearch(SiteINI, key)
	return ok
}

// ValidINIValue reports whether v can travel in php-fpm's config or in a
// FastCGI PHP_ADMIN_VALUE without starting another directive: no control
// characters at all (a "\r" is a line break to PHP's ini scanner).
func ValidINIValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// checkSiteINI validates one site ini override; dir is the site's
// document root, inside which auto_prepend_file/auto_append_file must
// stay (a relative value is relative to it). It returns the value to
// apply.
func checkSiteINI(key, val, dir string) (string, error) {
	if !SiteINIAllowed(key) {
		return "", fmt.Errorf("%s may not be set by a site (allowed: %s)", key, strings.Join(SiteINI, ", "))
	}
	if !ValidINIValue(val) {
		return "", fmt.Errorf("value of %s contains a control character", key)
	}
	switch key {
	case "auto_prepend_file", "auto_append_file":
		if val == "" || val == "none" {
			return val, nil
		}
		if strings.Contains(val, ":") {
			return "", fmt.Errorf("%s must be a file of the site, not %q", key, val)
		}
		p := val
		if !path.IsAbs(p) {
			p = path.Join(dir, p)
		}
		p = path.Clean(p)
		if !strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/") {
			return "", fmt.Errorf("%s %q is outside the site's directory", key, val)
		}
		return p, nil
	}
	return val, nil
}
