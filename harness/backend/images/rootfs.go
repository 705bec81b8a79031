package images

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The Debian base shared by the rabbitmq, postgres and prometheus stand-ins.
// One rootfs serves all three so the slow part (debootstrap, ~1.5 min, ~770 MB)
// runs once per machine, and its tarball is cached by the hash of this recipe.
const (
	baseSuite   = "bookworm"
	baseVariant = "minbase"
)

// basePackages are installed on top of minbase. Changing the list changes the
// recipe hash, so a stale cached rootfs is never reused.
var basePackages = []string{"ca-certificates", "postgresql-15", "prometheus", "rabbitmq-server"}

// baseRecipeHash identifies the rootfs content: suite, variant and packages.
// The mirror is left out on purpose: any mirror of the suite gives the same tree.
func baseRecipeHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "suite=%s\nvariant=%s\npackages=%s\n", baseSuite, baseVariant, strings.Join(basePackages, ","))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// debianMirror reads the Debian mirror this machine's apt already uses, so the
// builder never hard-codes a host name and follows whatever proxy or snapshot
// the machine is configured for.
func debianMirror(sourcesDir string) (string, error) {
	var files []string
	if f := filepath.Join(sourcesDir, "sources.list"); fileExists(f) {
		files = append(files, f)
	}
	more, _ := filepath.Glob(filepath.Join(sourcesDir, "sources.list.d", "*"))
	files = append(files, more...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var m string
		if strings.HasSuffix(f, ".sources") {
			m = mirrorFromDeb822(string(data))
		} else {
			m = mirrorFromOneLine(string(data))
		}
		if m != "" {
			return m, nil
		}
	}
	return "", fmt.Errorf("no apt source for Debian %s found under %s", baseSuite, sourcesDir)
}

// mirrorFromDeb822 finds a "Types: deb" stanza whose Suites include the base suite.
func mirrorFromDeb822(text string) string {
	for stanza := range strings.SplitSeq(text, "\n\n") {
		fields := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !containsWord(fields["types"], "deb") || !containsWord(fields["suites"], baseSuite) {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
			return uris[0]
		}
	}
	return ""
}

// mirrorFromOneLine handles "deb [opts] URI suite components" lines.
func mirrorFromOneLine(text string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && f[1] == baseSuite {
			return f[0]
		}
	}
	return ""
}

func containsWord(list, w string) bool { return slices.Contains(strings.Fields(list), w) }

// baseRootfs returns the cached rootfs tarball, building it with debootstrap
// when it is missing. The tarball is written under a temporary name and renamed,
// so an interrupted build never leaves a truncated cache entry.
func baseRootfs(ctx context.Context, c *config) (string, error) {
	tarball := filepath.Join(c.cacheDir, "rootfs-"+baseSuite+"-"+baseRecipeHash()+".tar")
	if fileExists(tarball) {
		return tarball, nil
	}
	if err := ensureDebootstrap(ctx, c); err != nil {
		return "", err
	}
	mirror, err := debianMirror(c.aptSourcesDir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(c.cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	dir, err := os.MkdirTemp(c.cacheDir, "rootfs-build-")
	if err != nil {
		return "", fmt.Errorf("rootfs temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	root := filepath.Join(dir, "root")
	fmt.Fprintf(c.log, "images: debootstrap %s %s with %s (takes a minute or two)\n", baseVariant, baseSuite, strings.Join(basePackages, " "))
	if err := run(ctx, c.log, nil, "debootstrap", "--variant="+baseVariant,
		"--include="+strings.Join(basePackages, ","), baseSuite, root, mirror); err != nil {
		return "", fmt.Errorf("debootstrap: %w", err)
	}
	// Package caches and lists are dead weight in an image.
	for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists"} {
		_ = removeContents(filepath.Join(root, p))
	}
	tmp := tarball + ".part"
	if err := run(ctx, c.log, nil, "tar", "--numeric-owner", "-C", root, "-cf", tmp, "."); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("pack rootfs: %w", err)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return "", fmt.Errorf("cache rootfs: %w", err)
	}
	return tarball, nil
}

// ensureDebootstrap installs debootstrap through apt when it is absent.
func ensureDebootstrap(ctx context.Context, c *config) error {
	if _, err := exec.LookPath("debootstrap"); err == nil {
		return nil
	}
	fmt.Fprintln(c.log, "images: installing debootstrap")
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if err := run(ctx, c.log, env, "apt-get", "install", "-y", "debootstrap"); err != nil {
		return fmt.Errorf("install debootstrap (needs root and apt): %w", err)
	}
	return nil
}

func removeContents(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() == "partial" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// run executes a command, sending its output to w, with extra env appended.
func run(ctx context.Context, w io.Writer, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = w
	cmd.Stderr = w
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
