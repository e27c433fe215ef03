module example.com/httpserve

go 1.18

require golang.org/x/text v0.3.5
