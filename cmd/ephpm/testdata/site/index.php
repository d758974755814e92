<?php
echo "front:" . $_SERVER['REQUEST_URI'];
