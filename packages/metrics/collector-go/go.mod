module github.com/nxs-sync/nxs-sync/packages/metrics/collector-go

go 1.22
