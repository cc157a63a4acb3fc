package statusweb

import (
	"embed"
	"net/http"
	"strconv"
)

// web holds the page: HTML, script and style, no external assets, so it
// works offline and under the strict Content-Security-Policy.
//
//go:embed web/index.html web/app.js web/style.css
var web embed.FS

// pageSize is the size in bytes of the page's embedded HTML, JS and CSS.
func pageSize() int {
	n := 0
	for _, name := range []string{"index.html", "app.js", "style.css"} {
		b, _ := web.ReadFile("web/" + name)
		n += len(b)
	}
	return n
}

func (s *Server) serveAsset(name, contentType string) http.HandlerFunc {
	b, err := web.ReadFile("web/" + name)
	if err != nil {
		// Unreachable: go:embed above fails the build if a file is missing.
		panic("statusweb: missing embedded asset " + name)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(b)
	}
}
