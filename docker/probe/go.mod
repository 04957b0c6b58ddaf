module github.com/nxs-sync/nxs-sync/docker/probe

go 1.25
