module loco.local/testapp

go 1.22
