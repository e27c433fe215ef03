module example.com/app

go 1.21

require example.com/vuln v1.0.0
