<?php
echo json_encode(['memory_limit' => ini_get('memory_limit'), 'upload_max_filesize' => ini_get('upload_max_filesize'), 'post_max_size' => ini_get('post_max_size'), 'fix_pathinfo' => ini_get('cgi.fix_pathinfo')]);
