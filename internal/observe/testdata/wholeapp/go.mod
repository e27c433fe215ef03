module example.com/wholeapp

go 1.21

require example.com/whole v1.2.0
