module example.com/httpcount

go 1.21
