module example.com/readreq

go 1.21
