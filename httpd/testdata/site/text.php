<?php
header('Content-Type: text/html; charset=utf-8');
echo str_repeat("<p>compress me please</p>\n", 400);
