module github.com/estiba/estiba

go 1.26.8
