package images

import (
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

func copyFile(src, dst string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// copyDir copies the regular files of src (recursively) into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(p, filepath.Join(dst, rel), info.Mode().Perm())
	})
}

// hashTree feeds every regular file under dir (path, mode, content) into h in
// lexical order, so the hash is a function of the tree alone.
func hashTree(h hash.Hash, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		return hashFile(h, filepath.ToSlash(rel), p)
	})
}

func hashFile(h hash.Hash, name, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("hash %s: %w", p, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "file=%s mode=%o size=%d\n", name, info.Mode().Perm(), info.Size())
	_, err = io.Copy(h, f)
	return err
}
