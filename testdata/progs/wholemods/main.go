// Command wholemods uses two real modules whose entries in the Go
// vulnerability database have no symbol data (GO-2025-3553 for
// github.com/golang-jwt/jwt, GO-2026-4316 for github.com/go-chi/chi, every
// version): reach and govulncheck must both treat the whole module as
// vulnerable.
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/go-chi/chi"
	"github.com/golang-jwt/jwt"
)

func main() {
	r := chi.NewRouter()
	r.Get("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	_, err := jwt.Parse(os.Getenv("TOKEN"), func(*jwt.Token) (any, error) { return []byte("key"), nil })
	fmt.Println(rec.Body.String(), err != nil)
}
