package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxWebhookBody bounds the form of an inbound Twilio request.
const maxWebhookBody = 64 << 10

// signature computes X-Twilio-Signature for a request to rawURL with the
// form parameters: base64(HMAC-SHA1(authToken, url + name1 + value1 + ...)),
// parameters sorted by name, several values of one name sorted too.
func signature(authToken, rawURL string, form url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	for _, k := range slices.Sorted(maps.Keys(form)) {
		for _, v := range slices.Sorted(slices.Values(form[k])) {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether sig is Twilio's signature of a request to
// rawURL (the full URL Twilio was given, query included) with the form
// parameters of its POST body. As Twilio's own libraries do, it accepts the
// URL with and without its port, since Twilio is not consistent there. The
// comparison takes constant time.
func VerifySignature(authToken, rawURL string, form url.Values, sig string) bool {
	if authToken == "" || sig == "" {
		return false
	}
	ok := false
	for _, u := range urlVariants(rawURL) {
		want := signature(authToken, u, form)
		if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1 {
			ok = true
		}
	}
	return ok
}

// urlVariants returns rawURL as given, without its port, and with the
// scheme's default port.
func urlVariants(rawURL string) []string {
	out := []string{rawURL}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return out
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if u.Port() != "" {
		v := *u
		v.Host = host
		out = append(out, v.String())
	} else {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		v := *u
		v.Host = net.JoinHostPort(u.Hostname(), port)
		out = append(out, v.String())
	}
	return out
}

// RequireSignature passes to next only requests that carry a valid
// X-Twilio-Signature for authToken. publicURL returns the URL Twilio used
// for a request (behind a proxy or tunnel the listener sees another); nil
// means the scheme, Host and URI the request arrived with. Any other
// request gets 403 with a JSON error and reaches nothing. The form is
// parsed here (at most 64 KiB), so next finds it in r.PostForm.
func RequireSignature(authToken string, publicURL func(*http.Request) string, next http.Handler) http.Handler {
	if publicURL == nil {
		publicURL = requestURL
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxWebhookBody)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_form", "the request body is not a readable form")
			return
		}
		u := publicURL(r)
		if !VerifySignature(authToken, u, r.PostForm, r.Header.Get("X-Twilio-Signature")) {
			slog.WarnContext(r.Context(), "twilio request with a bad signature refused",
				"url", u, "remote", r.RemoteAddr, "signed", r.Header.Get("X-Twilio-Signature") != "")
			writeError(w, http.StatusForbidden, "invalid_signature", "X-Twilio-Signature is missing or does not match")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requestURL is the URL a request arrived at, as seen by this listener.
func requestURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "message": message})
}
