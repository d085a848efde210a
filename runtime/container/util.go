package container

import (
	"os"
	"os/exec"
)

func readFileString(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

type (
	osFile   = os.File
	execCmdT = exec.Cmd
)

func osMkdir(p string) error { return os.Mkdir(p, 0o711) }

func osStat(p string) (os.FileInfo, error) { return os.Stat(p) }
