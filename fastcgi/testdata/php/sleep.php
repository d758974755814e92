<?php
usleep((int)($_GET['us'] ?? 20000));
echo getmypid();
