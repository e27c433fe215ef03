package testprog

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// GoEnv is the module cache and proxy the go command used before
// ServeModules changed them.
type GoEnv struct {
	ModCache, Proxy string
}

// ServeModules serves each module of mods (version -> source directory with
// a go.mod) from a file:// module proxy under dir, so that fixture
// programs depend on it at a real version as they would on a published
// module. It points this process's go commands at that proxy first, then at
// the usual module cache (served as a proxy) and proxy, with a private
// module cache under dir and no checksum database. Call it from TestMain,
// and RemoveAll(dir) at the end. It returns the settings it replaced.
func ServeModules(dir string, mods map[module.Version]string) (GoEnv, error) {
	var orig GoEnv
	out, err := exec.Command("go", "env", "GOMODCACHE", "GOPROXY").Output()
	if err != nil {
		return orig, fmt.Errorf("go env: %w", err)
	}
	if env := strings.Split(strings.TrimSpace(string(out)), "\n"); len(env) == 2 {
		orig = GoEnv{ModCache: env[0], Proxy: env[1]}
	}
	proxy := filepath.Join(dir, "proxy")
	for v, src := range mods {
		if err := ServeModule(proxy, v, src); err != nil {
			return orig, fmt.Errorf("serve %s: %w", v, err)
		}
	}
	proxies := []string{"file://" + proxy}
	if orig.ModCache != "" {
		proxies = append(proxies, "file://"+filepath.Join(orig.ModCache, "cache", "download"), orig.Proxy)
	}
	mu.Lock()
	toolchainCache = orig.ModCache
	reachEnv = orig
	mu.Unlock()
	os.Setenv("GOPROXY", strings.Join(proxies, ","))
	os.Setenv("GOSUMDB", "off")
	os.Setenv("GOMODCACHE", filepath.Join(dir, "modcache"))
	return orig, nil
}

// ServeModule lays out the module in src (a directory with a go.mod) as v
// in the file:// module proxy directory proxy.
func ServeModule(proxy string, v module.Version, src string) error {
	esc, err := module.EscapePath(v.Path)
	if err != nil {
		return err
	}
	at := filepath.Join(proxy, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	zf, err := os.Create(filepath.Join(at, v.Version+".zip"))
	if err != nil {
		return err
	}
	if err := modzip.CreateFromDir(zf, v, src); err != nil {
		zf.Close()
		return fmt.Errorf("zip %s: %w", src, err)
	}
	if err := zf.Close(); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return err
	}
	files := map[string]string{
		"list":              v.Version + "\n",
		v.Version + ".info": fmt.Sprintf(`{"Version":%q,"Time":"2024-01-01T00:00:00Z"}`, v.Version),
		v.Version + ".mod":  string(gomod),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(at, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// RemoveAll removes dir, making the read-only directories of a module
// cache in it writable first.
func RemoveAll(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	os.RemoveAll(dir)
}
