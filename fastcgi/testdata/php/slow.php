<?php
// Sends headers and a first chunk, then stalls.
echo 'first';
flush();
usleep((int)($_GET['us'] ?? 2000000));
echo 'late';
